"""Resolving a credential to a principal: API keys, passwords, JWTs, sessions, brokers, certificates.

``Authenticator.authenticate`` takes what ``scheme.credential_of`` read from the request and gives
the :class:`~app.security.principal.Principal`, or raises :class:`AuthenticationError`. Every
catalog lookup, argon2 verification and JWKS fetch runs in a worker thread; the event loop only
touches the cache. A verified credential is cached (``cache.py``) under HMAC(pepper, credential)
until min(its expiry, ``auth_cache_ttl_s``).

Revocation: the catalog's revocation clock (``app/catalog/auth.py``) is read every
``auth_poll_interval_ms``; when it moves, the whole cache is dropped at once, so a key revoked on
one broker is refused on every broker within one interval (200 ms by default). A verification that
was under way while the cache was dropped does not put its (possibly stale) answer into the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Final

from anyio import to_thread

from app.catalog import Catalog
from app.catalog import auth as auth_catalog
from app.config import Settings
from app.error_codes import ErrorCode
from app.security.authn.cache import CredentialCache
from app.security.authn.credentials import api_key_digest, secret_matches, session_digest
from app.security.authn.jwt import JwtError, JwtVerifier
from app.security.authn.passwords import PasswordPolicy
from app.security.authn.pepper import Pepper, load_peppers
from app.security.authn.scheme import (
    INTER_BROKER_PREFIX,
    ApiKey,
    Basic,
    BearerJwt,
    Credential,
    InterBroker,
    PeerCertificate,
    SessionCookie,
)
from app.security.authn.throttle import FailureThrottle
from app.security.principal import Principal

__all__ = ["AuthenticationError", "Authenticator", "inter_broker_token"]

logger = logging.getLogger("tidelog.auth")

_CACHE_PURPOSE: Final = b"tidelog credential cache"
_INTER_BROKER_PURPOSE: Final = b"tidelog inter-broker"


class AuthenticationError(Exception):
    """No credential (40101) or a refused one (40102); ``detail`` never repeats the credential."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _refused(detail: str) -> AuthenticationError:
    return AuthenticationError(ErrorCode.AUTHENTICATION_FAILED, detail)


def inter_broker_token(pepper: Pepper, principal: str) -> str:
    """The bearer token a broker presents to the others: HMAC of its principal under the pepper."""
    return INTER_BROKER_PREFIX + pepper.mac(_INTER_BROKER_PURPOSE, principal.encode()).hex()


class Authenticator:
    """One per broker process; ``start`` begins the revocation poll, ``close`` ends it."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        jwt_verifier: JwtVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.enabled = settings.auth_enabled
        self.catalog = catalog
        self.passwords = PasswordPolicy(settings)
        self.jwt = jwt_verifier or JwtVerifier(settings)
        self.cache = CredentialCache(ttl_s=settings.auth_cache_ttl_s, clock=clock)
        self.throttle = FailureThrottle(
            limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
        )
        self._clock = clock
        self._peppers: tuple[Pepper, ...] | None = None
        self._cache_epoch = 0
        self._generation: int | None = None
        self._poll_s = settings.auth_poll_interval_ms / 1000
        self._task: asyncio.Task[None] | None = None

    # -- peppers -------------------------------------------------------------------------------

    @property
    def peppers(self) -> tuple[Pepper, ...]:
        """The configured peppers, the current first (loaded on first use)."""
        if self._peppers is None:
            self._peppers = load_peppers(self.settings)
        return self._peppers

    @property
    def pepper(self) -> Pepper:
        return self.peppers[0]

    def pepper_by_id(self, pepper_id: str) -> Pepper | None:
        return next((p for p in self.peppers if p.id == pepper_id), None)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled:
            return
        _ = self.peppers  # a malformed pepper setting fails the start, not the first request
        self._generation = await to_thread.run_sync(self._read_generation)
        self._task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _read_generation(self) -> int:
        with self.catalog.read() as session:
            return auth_catalog.revocation_generation(session)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                generation = await to_thread.run_sync(self._read_generation)
            except Exception as exc:  # the catalog is unreachable: revocations cannot be seen
                logger.warning("cannot read the revocation clock (%s); dropping cached credentials",
                               type(exc).__name__)
                self.drop_cache()
                continue
            if generation != self._generation:
                self._generation = generation
                self.drop_cache()

    def drop_cache(self) -> None:
        """Forget every verified credential now (a revocation happened here or elsewhere)."""
        self._cache_epoch += 1
        self.cache.clear()

    # -- authentication ------------------------------------------------------------------------

    async def authenticate(self, credential: Credential | None) -> Principal:
        """The principal ``credential`` proves, or ``AuthenticationError``."""
        if credential is None:
            raise AuthenticationError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                "authentication is required: send an API key or JWT (Bearer) or a password (Basic)",
            )
        if isinstance(credential, PeerCertificate):
            return Principal(credential.principal, "mtls")
        if isinstance(credential, InterBroker):
            return self._inter_broker(credential.token)
        raw = _cache_text(credential)
        digest = self.pepper.mac(_CACHE_PURPOSE, raw.encode())
        cached = self.cache.get(digest)
        if cached is not None:
            return cached
        epoch = self._cache_epoch
        principal, expires_at_s = await self._verify(credential)
        if epoch == self._cache_epoch:  # no revocation was seen while this one was verified
            self.cache.put(digest, principal, expires_at_s=expires_at_s)
        return principal

    async def _verify(self, credential: Credential) -> tuple[Principal, float | None]:
        if isinstance(credential, ApiKey):
            return await to_thread.run_sync(self._verify_api_key, credential)
        if isinstance(credential, Basic):
            principal = await self.verify_password(credential.username, credential.password)
            return principal, None
        if isinstance(credential, BearerJwt):
            try:
                name, expires_at_s = await to_thread.run_sync(self.jwt.verify, credential.token)
            except JwtError as exc:
                raise _refused(str(exc)) from None
            return Principal(name, "jwt"), expires_at_s
        assert isinstance(credential, SessionCookie)
        return await to_thread.run_sync(self._verify_session, credential.token)

    def _verify_api_key(self, credential: ApiKey) -> tuple[Principal, float | None]:
        key_id, secret = credential.key
        with self.catalog.read() as session:
            row = auth_catalog.get_api_key(session, key_id=key_id)
        pepper = self.pepper_by_id(row.pepper_id) if row is not None else None
        if row is None or pepper is None:
            secret_matches(self.pepper, secret, None)  # the same work as for a known id
            raise _refused("unknown or wrong API key")
        if not secret_matches(pepper, secret, row.secret_hash):
            raise _refused("unknown or wrong API key")
        if row.revoked_at_ms is not None:
            raise _refused(f"API key {key_id} was revoked")
        now_ms = int(self._clock() * 1000)
        if row.expires_at_ms is not None and row.expires_at_ms <= now_ms:
            raise _refused(f"API key {key_id} has expired")
        expires = None if row.expires_at_ms is None else row.expires_at_ms / 1000
        return Principal(row.principal, "api_key", row.super_user), expires

    async def verify_password(self, username: str, password: str) -> Principal:
        """``User:<username>`` when the password matches (rehashed if its parameters are old)."""
        return await to_thread.run_sync(self._verify_password, username, password)

    def _verify_password(self, username: str, password: str) -> Principal:
        with self.catalog.read() as session:
            row = auth_catalog.get_user(session, name=username)
        stored = row.password_hash if row is not None else None
        if not self.passwords.verify(stored, password):
            raise _refused("unknown user or wrong password")
        assert stored is not None
        if self.passwords.needs_rehash(stored):
            with self.catalog.begin() as session:
                auth_catalog.set_user_password(
                    session, name=username, password_hash=self.passwords.hash(password),
                    now_ms=int(self._clock() * 1000), revoke=False,
                )
        return Principal(f"User:{username}", "password")

    async def verify_api_key(self, credential: ApiKey) -> tuple[Principal, float | None]:
        """The key's principal and its expiry (epoch seconds, None: never), or ``AuthenticationError``."""
        return await to_thread.run_sync(self._verify_api_key, credential)

    def _verify_session(self, token: str) -> tuple[Principal, float | None]:
        with self.catalog.read() as session:
            row = auth_catalog.get_session(session, token_hash=session_digest(self.pepper, token))
        now_ms = int(self._clock() * 1000)
        if row is None or row.expires_at_ms <= now_ms:
            raise _refused("the session has ended; sign in again")
        return Principal(row.principal, "session", row.super_user), row.expires_at_ms / 1000

    def _inter_broker(self, token: str) -> Principal:
        principal = self.settings.inter_broker_principal
        for pepper in self.peppers:
            if hmac.compare_digest(inter_broker_token(pepper, principal), token):
                return Principal(principal, "inter_broker", super_user=True)
        raise _refused("unknown inter-broker token")

    def key_digest(self, secret: str) -> bytes:
        """The stored form of a new key's secret, under the current pepper."""
        return api_key_digest(self.pepper, secret)


def _cache_text(credential: Credential) -> str:
    if isinstance(credential, ApiKey):
        return "k:" + credential.raw
    if isinstance(credential, Basic):
        return "b:" + credential.raw
    if isinstance(credential, BearerJwt):
        return "j:" + credential.token
    assert isinstance(credential, SessionCookie)
    return "s:" + credential.token
