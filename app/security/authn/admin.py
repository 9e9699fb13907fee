"""Issuing and withdrawing credentials: API keys, password users, console sessions. No HTTP here.

Every change is one catalog transaction; a withdrawal (revoke, delete, new password, sign-out) bumps
the revocation clock in the same transaction, so every broker drops its cached credentials at its
next poll, and this broker at once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from app.catalog import auth as auth_catalog
from app.error_codes import ErrorCode
from app.errors_base import InvalidParameterError, TidelogError
from app.security.authn.authenticator import Authenticator
from app.security.authn.credentials import new_api_key, new_session_token, session_digest
from app.security.authn.passwords import check_password
from app.security.principal import Principal

__all__ = [
    "CredentialAdmin",
    "IssuedKey",
    "UnknownApiKeyError",
    "UnknownUserError",
    "UserExistsError",
    "check_principal",
    "check_user_name",
]

#: ``User:<name>``: what a key may be issued to; the name is what Kafka's principals allow.
_PRINCIPAL = re.compile(r"User:[A-Za-z0-9._@+=,-]{1,200}")
_USER_NAME = re.compile(r"[A-Za-z0-9._@+=,-]{1,200}")


class UnknownApiKeyError(TidelogError):
    code = ErrorCode.UNKNOWN_API_KEY


class UnknownUserError(TidelogError):
    code = ErrorCode.UNKNOWN_USER


class UserExistsError(TidelogError):
    code = ErrorCode.USER_EXISTS


def check_principal(principal: str) -> str:
    if not _PRINCIPAL.fullmatch(principal):
        raise InvalidParameterError(
            f"a principal is 'User:<name>', the name 1 to 200 of [A-Za-z0-9._@+=,-]; not {principal!r}"
        )
    return principal


def check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name) or name == "ANONYMOUS":
        raise InvalidParameterError(f"a user name is 1 to 200 of [A-Za-z0-9._@+=,-]; not {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    row: auth_catalog.ApiKeyRow


class CredentialAdmin:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.catalog = authenticator.catalog

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    # -- API keys ------------------------------------------------------------------------------

    def create_key(
        self, *, principal: str, description: str = "", expires_at_ms: int | None = None,
        super_user: bool = False,
    ) -> IssuedKey:
        check_principal(principal)
        now = self._now_ms()
        if expires_at_ms is not None and expires_at_ms <= now:
            raise InvalidParameterError("expires_at_ms is in the past")
        key, key_id, secret = new_api_key()
        row = auth_catalog.ApiKeyRow(
            key_id=key_id, principal=principal, secret_hash=self.authenticator.key_digest(secret),
            pepper_id=self.authenticator.pepper.id, description=description, super_user=super_user,
            created_at_ms=now, expires_at_ms=expires_at_ms, revoked_at_ms=None,
        )
        with self.catalog.begin() as session:
            auth_catalog.create_api_key(session, row=row)
        return IssuedKey(key, row)

    def list_keys(self, *, principal: str | None = None) -> list[auth_catalog.ApiKeyRow]:
        with self.catalog.read() as session:
            return auth_catalog.list_api_keys(session, principal=principal)

    def revoke_key(self, key_id: str) -> auth_catalog.ApiKeyRow:
        with self.catalog.begin() as session:
            row = auth_catalog.revoke_api_key(session, key_id=key_id, now_ms=self._now_ms())
        if row is None:
            raise UnknownApiKeyError(f"no API key with id {key_id!r}", key_id=key_id)
        self.authenticator.drop_cache()
        return row

    # -- password users (KIP-554's AlterUserScramCredentials, with argon2id) ------------------

    def create_user(self, name: str, password: str) -> auth_catalog.PasswordUserRow:
        check_user_name(name)
        self._check_password(password)
        hashed = self.authenticator.passwords.hash(password)
        with self.catalog.begin() as session:
            if not auth_catalog.create_user(session, name=name, password_hash=hashed, now_ms=self._now_ms()):
                raise UserExistsError(f"user {name!r} already exists", user=name)
            row = auth_catalog.get_user(session, name=name)
        assert row is not None
        return row

    def alter_user(self, name: str, password: str) -> auth_catalog.PasswordUserRow:
        self._check_password(password)
        hashed = self.authenticator.passwords.hash(password)
        with self.catalog.begin() as session:
            if not auth_catalog.set_user_password(session, name=name, password_hash=hashed,
                                                  now_ms=self._now_ms()):
                raise UnknownUserError(f"no user {name!r}", user=name)
            row = auth_catalog.get_user(session, name=name)
        self.authenticator.drop_cache()
        assert row is not None
        return row

    def delete_user(self, name: str) -> None:
        with self.catalog.begin() as session:
            if not auth_catalog.delete_user(session, name=name):
                raise UnknownUserError(f"no user {name!r}", user=name)
        self.authenticator.drop_cache()

    def list_users(self) -> list[auth_catalog.PasswordUserRow]:
        with self.catalog.read() as session:
            return auth_catalog.list_users(session)

    @staticmethod
    def _check_password(password: str) -> None:
        problem = check_password(password)
        if problem is not None:
            raise InvalidParameterError(problem)

    # -- console sessions ----------------------------------------------------------------------

    def open_session(
        self, principal: Principal, *, max_age_s: int, not_after_ms: int | None = None
    ) -> tuple[str, int]:
        """A new session for ``principal``: (the cookie's value, its expiry in epoch ms), ending no
        later than ``not_after_ms`` (the expiry of the API key it was opened with)."""
        token = new_session_token()
        now = self._now_ms()
        expires = now + max_age_s * 1000
        if not_after_ms is not None:
            expires = min(expires, not_after_ms)
        row = auth_catalog.SessionRow(
            token_hash=session_digest(self.authenticator.pepper, token), principal=principal.name,
            super_user=principal.super_user, created_at_ms=now, expires_at_ms=expires,
        )
        with self.catalog.begin() as session:
            auth_catalog.create_session(session, row=row)
        return token, expires

    def close_session(self, token: str) -> None:
        with self.catalog.begin() as session:
            auth_catalog.delete_session(
                session, token_hash=session_digest(self.authenticator.pepper, token), now_ms=self._now_ms()
            )
        self.authenticator.drop_cache()
