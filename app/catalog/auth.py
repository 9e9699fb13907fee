"""Catalog tables of credentials: API keys, password users, console sessions, and the revocation clock.

``api_keys``: one row per key, looked up by its public id (16 hex characters). ``secret_hash`` is
HMAC-SHA256 of the secret under the server pepper named by ``pepper_id`` (the pepper itself is never
in the catalog). ``revoked_at_ms`` set: refused; the row stays so that ``GET /v1/keys`` shows it.

``password_users``: Kafka's user SCRAM credentials (KIP-554), hashed with argon2id instead of SCRAM;
``password_hash`` is the PHC string, which carries its own parameters (a change of parameters rehashes
on the next successful login).

``auth_sessions``: the console's sessions; ``token_hash`` is HMAC-SHA256 of the cookie's value.

``auth_revocations``: one row whose ``generation`` every revocation bumps (key revoked, user deleted
or its password altered, session ended). Every broker polls it and drops its cache of verified
credentials when it moves, so a revocation holds on every broker within one poll interval.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.catalog.base import Base

__all__ = [
    "ApiKeyRow",
    "PasswordUserRow",
    "SessionRow",
    "bump_revocations",
    "create_api_key",
    "create_session",
    "create_user",
    "delete_session",
    "delete_sessions_of",
    "delete_user",
    "get_api_key",
    "get_session",
    "get_user",
    "list_api_keys",
    "list_users",
    "revocation_generation",
    "revoke_api_key",
    "set_user_password",
]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    principal: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    pepper_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1000), default="")
    super_user: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class PasswordUserRow(Base):
    __tablename__ = "password_users"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(512))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class SessionRow(Base):
    __tablename__ = "auth_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    principal: Mapped[str] = mapped_column(String(255))
    super_user: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)


class RevocationRow(Base):
    __tablename__ = "auth_revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


def create_api_key(session: Session, *, row: ApiKeyRow) -> None:
    session.add(row)


def get_api_key(session: Session, *, key_id: str) -> ApiKeyRow | None:
    return session.get(ApiKeyRow, key_id)


def list_api_keys(session: Session, *, principal: str | None = None) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at_ms, ApiKeyRow.key_id)
    if principal is not None:
        query = query.where(ApiKeyRow.principal == principal)
    return list(session.scalars(query))


def revoke_api_key(session: Session, *, key_id: str, now_ms: int) -> ApiKeyRow | None:
    """Marks the key revoked (kept for listing) and bumps the revocation clock; None if unknown."""
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        return None
    if row.revoked_at_ms is None:
        row.revoked_at_ms = now_ms
    delete_sessions_of(session, principal=row.principal)
    bump_revocations(session)
    return row


def create_user(session: Session, *, name: str, password_hash: str, now_ms: int) -> bool:
    """Adds a password user; False when one with this name exists."""
    if session.get(PasswordUserRow, name) is not None:
        return False
    session.add(PasswordUserRow(name=name, password_hash=password_hash, created_at_ms=now_ms,
                                updated_at_ms=now_ms))
    return True


def get_user(session: Session, *, name: str) -> PasswordUserRow | None:
    return session.get(PasswordUserRow, name)


def list_users(session: Session) -> list[PasswordUserRow]:
    return list(session.scalars(select(PasswordUserRow).order_by(PasswordUserRow.name)))


def set_user_password(
    session: Session, *, name: str, password_hash: str, now_ms: int, revoke: bool = True
) -> bool:
    """Replaces a user's hash; ``revoke`` (a new password) bumps the clock, a rehash does not."""
    updated = session.execute(
        update(PasswordUserRow)
        .where(PasswordUserRow.name == name)
        .values(password_hash=password_hash, updated_at_ms=now_ms)
    )
    if revoke:
        bump_revocations(session)
    return bool(getattr(updated, "rowcount", 0))


def delete_user(session: Session, *, name: str) -> bool:
    removed = session.execute(delete(PasswordUserRow).where(PasswordUserRow.name == name))
    delete_sessions_of(session, principal=f"User:{name}")
    bump_revocations(session)
    return bool(getattr(removed, "rowcount", 0))


def create_session(session: Session, *, row: SessionRow) -> None:
    session.add(row)


def get_session(session: Session, *, token_hash: bytes) -> SessionRow | None:
    return session.get(SessionRow, token_hash)


def delete_session(session: Session, *, token_hash: bytes, now_ms: int) -> None:
    """Ends a session (and every expired one) and bumps the revocation clock."""
    session.execute(
        delete(SessionRow).where((SessionRow.token_hash == token_hash) | (SessionRow.expires_at_ms < now_ms))
    )
    bump_revocations(session)


def delete_sessions_of(session: Session, *, principal: str) -> None:
    """Ends every session of ``principal`` (its key was revoked, its user deleted)."""
    session.execute(delete(SessionRow).where(SessionRow.principal == principal))


def bump_revocations(session: Session) -> None:
    """Moves the revocation clock on: every broker drops its cached credentials at its next poll."""
    row = session.get(RevocationRow, 1, with_for_update=True)
    if row is None:
        session.add(RevocationRow(id=1, generation=1))
    else:
        row.generation += 1


def revocation_generation(session: Session) -> int:
    """The revocation clock (0 before the first revocation)."""
    value = session.scalar(select(RevocationRow.generation).where(RevocationRow.id == 1))
    return int(value or 0)
