"""Catalog tables of ACL bindings and client quotas, and the version counter brokers poll.

``acls``: one row per binding (:class:`app.security.acl.AclBinding`); a binding is unique, so
creating one twice is a no-op, as in Kafka.
``client_quotas``: one row per principal (``<default>`` for the default entry, Kafka's
``--entity-default``): produce and fetch bytes per second, requests per second, concurrent streams;
NULL is "no limit".
``security_version``: one row, bumped in the transaction of every change to either table, so that
each broker's cache (``app.security.authorizer_cache``) sees a change by reading one integer
every ``acl_refresh_interval_ms`` and reloads only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.catalog.base import Base
from app.security.acl import (
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

__all__ = [
    "DEFAULT_QUOTA_ENTITY",
    "AclRow",
    "ClientQuota",
    "ClientQuotaRow",
    "SecurityVersionRow",
    "create_acls",
    "delete_acls",
    "delete_quota",
    "list_acls",
    "list_quotas",
    "load_security",
    "security_version",
    "set_quota",
]

#: The principal name of the default quota entry.
DEFAULT_QUOTA_ENTITY = "<default>"


class AclRow(Base):
    __tablename__ = "acls"
    __table_args__ = (
        UniqueConstraint(
            "principal", "host", "resource_type", "pattern_type", "resource_name", "operation", "permission",
            name="uq_acls_binding",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(32))
    pattern_type: Mapped[str] = mapped_column(String(16))
    resource_name: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(32))
    permission: Mapped[str] = mapped_column(String(8))

    def binding(self) -> AclBinding:
        return AclBinding(
            principal=self.principal, host=self.host, resource_type=ResourceType(self.resource_type),
            pattern_type=PatternType(self.pattern_type), resource_name=self.resource_name,
            operation=Operation(self.operation), permission=Permission(self.permission),
        )


class ClientQuotaRow(Base):
    __tablename__ = "client_quotas"

    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    producer_byte_rate: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    consumer_byte_rate: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    request_rate: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_streams: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SecurityVersionRow(Base):
    __tablename__ = "security_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class ClientQuota:
    """One quota entry; ``None`` is no limit (Kafka's ``producer_byte_rate`` and friends)."""

    principal: str
    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None
    request_rate: int | None = None
    max_streams: int | None = None


def _bump(session: Session) -> None:
    changed = session.execute(
        update(SecurityVersionRow).where(SecurityVersionRow.id == 1)
        .values(version=SecurityVersionRow.version + 1)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        session.add(SecurityVersionRow(id=1, version=1))


def security_version(session: Session) -> int:
    """The counter every ACL or quota change bumps (0 before the first)."""
    version = session.scalar(select(SecurityVersionRow.version).where(SecurityVersionRow.id == 1))
    return int(version or 0)


def list_acls(session: Session, *, where: AclBindingFilter | None = None) -> list[AclBinding]:
    """Every binding, or those ``where`` matches, in creation order."""
    bindings = [row.binding() for row in session.scalars(select(AclRow).order_by(AclRow.id))]
    return bindings if where is None else [b for b in bindings if where.matches(b)]


def create_acls(session: Session, *, bindings: Iterable[AclBinding]) -> list[AclBinding]:
    """Adds the bindings not there yet; gives back the ones added."""
    existing = set(list_acls(session))
    added: list[AclBinding] = []
    for binding in bindings:
        if binding in existing:
            continue
        existing.add(binding)
        added.append(binding)
        session.add(AclRow(
            principal=binding.principal, host=binding.host, resource_type=str(binding.resource_type),
            pattern_type=str(binding.pattern_type), resource_name=binding.resource_name,
            operation=str(binding.operation), permission=str(binding.permission),
        ))
    if added:
        _bump(session)
    return added


def delete_acls(session: Session, *, where: AclBindingFilter) -> list[AclBinding]:
    """Deletes the bindings ``where`` matches; gives them back."""
    deleted: list[AclBinding] = []
    for row in session.scalars(select(AclRow).order_by(AclRow.id)):
        binding = row.binding()
        if where.matches(binding):
            deleted.append(binding)
            session.delete(row)
    if deleted:
        _bump(session)
    return deleted


def _quota(row: ClientQuotaRow) -> ClientQuota:
    return ClientQuota(
        principal=row.principal, producer_byte_rate=row.producer_byte_rate,
        consumer_byte_rate=row.consumer_byte_rate, request_rate=row.request_rate,
        max_streams=row.max_streams,
    )


def list_quotas(session: Session) -> list[ClientQuota]:
    """Every quota entry, the default one included, by principal."""
    return [_quota(row) for row in session.scalars(select(ClientQuotaRow).order_by(ClientQuotaRow.principal))]


def set_quota(session: Session, *, principal: str, limits: Mapping[str, int | None]) -> ClientQuota:
    """Sets the named limits of ``principal``'s entry (created when missing); ``None`` removes one."""
    row = session.get(ClientQuotaRow, principal)
    if row is None:
        row = ClientQuotaRow(principal=principal)
        session.add(row)
    for name, value in limits.items():
        setattr(row, name, value)
    session.flush()
    _bump(session)
    return _quota(row)


def delete_quota(session: Session, *, principal: str) -> bool:
    """Removes ``principal``'s entry; whether there was one."""
    row = session.get(ClientQuotaRow, principal)
    if row is None:
        return False
    session.delete(row)
    _bump(session)
    return True


def load_security(session: Session) -> tuple[int, list[AclBinding], list[ClientQuota]]:
    """The version, the bindings and the quotas, read in one transaction."""
    return security_version(session), list_acls(session), list_quotas(session)
