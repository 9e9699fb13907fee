"""Whether a principal may do an operation on a resource: Kafka's ``StandardAuthorizer`` decision.

The decision for ``(principal, host, operation, resource)``, in this order (KIP-801):

1. a super user (``super_users``) is allowed everything;
2. the bindings whose pattern covers the resource are collected (LITERAL equal, LITERAL ``*``,
   PREFIXED a prefix of the name); when there are none at all, for any principal or operation, the
   answer is ``allow_everyone_if_no_acl_found`` (Kafka's ``allow.everyone.if.no.acl.found``), so
   that with it set the first ACL on a resource closes it to everyone it does not name. Internal
   topics (names starting ``__``, such as ``__audit``) are never opened this way;
3. any covering DENY for the caller (its principal or ``User:*``, its host or ``*``) of the
   operation or of ALL denies: a PREFIXED DENY beats a LITERAL ALLOW;
4. any covering ALLOW of the operation, of ALL, or of an operation implying it
   (:data:`app.security.acl.IMPLIED_BY`) allows;
5. anything else is denied.

:class:`StandardAuthorizer` is pure over an :class:`AclSnapshot` (the catalog's bindings, indexed
once per change by :mod:`app.security.authorizer_cache`); :class:`AllowAllAuthorizer` is what a
broker with authorization off uses, so the code asking never checks whether it is on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from app.security.acl import (
    CLUSTER_NAME,
    IMPLIED_BY,
    WILDCARD,
    AclBinding,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    operations_of,
)

__all__ = ["AclSnapshot", "AllowAllAuthorizer", "Authorizer", "StandardAuthorizer"]

#: Decisions remembered per snapshot before the memo starts again (bounds its memory).
_MAX_DECISIONS = 100_000


class Authorizer(Protocol):
    """What routes, filters and describe answers ask; one implementation per mode."""

    @property
    def enabled(self) -> bool: ...

    def authorize(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> bool:
        """Whether the caller may do ``operation`` on the resource."""
        ...

    def authorize_any(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType
    ) -> bool:
        """Whether the caller may do ``operation`` on some resource of the type (KIP-679)."""
        ...

    def authorized_operations(
        self, principal: str, host: str, resource_type: ResourceType, name: str
    ) -> list[Operation]:
        """The operations of the resource's type the caller may do on it (KIP-430)."""
        ...


class AllowAllAuthorizer:
    """Authorization off: everyone may do everything, exactly as before ACLs existed."""

    enabled = False

    def authorize(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> bool:
        return True

    def authorize_any(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType
    ) -> bool:
        return True

    def authorized_operations(
        self, principal: str, host: str, resource_type: ResourceType, name: str
    ) -> list[Operation]:
        return list(operations_of(resource_type))


class AclSnapshot:
    """The bindings at one catalog version, indexed by resource for the decision."""

    __slots__ = ("_literal", "_prefix_lengths", "_prefixed", "bindings", "version")

    def __init__(self, bindings: Iterable[AclBinding], version: int = 0) -> None:
        self.bindings: tuple[AclBinding, ...] = tuple(bindings)
        self.version = version
        self._literal: dict[tuple[ResourceType, str], list[AclBinding]] = defaultdict(list)
        # PREFIXED bindings by (type, prefix), and the prefix lengths in use per type: a name is
        # covered by the prefixes among its own first n characters, a few dictionary lookups.
        self._prefixed: dict[tuple[ResourceType, str], list[AclBinding]] = defaultdict(list)
        self._prefix_lengths: dict[ResourceType, list[int]] = defaultdict(list)
        for binding in self.bindings:
            if binding.pattern_type is PatternType.LITERAL:
                self._literal[(binding.resource_type, binding.resource_name)].append(binding)
            else:
                self._prefixed[(binding.resource_type, binding.resource_name)].append(binding)
        for resource_type, prefix in self._prefixed:
            self._prefix_lengths[resource_type].append(len(prefix))
        for lengths in self._prefix_lengths.values():
            lengths[:] = sorted(set(lengths))

    def covering(self, resource_type: ResourceType, name: str) -> list[AclBinding]:
        """Every binding whose pattern covers the resource."""
        found = list(self._literal.get((resource_type, name), ()))
        if name != WILDCARD:
            found += self._literal.get((resource_type, WILDCARD), ())
        for length in self._prefix_lengths.get(resource_type, ()):
            if length > len(name):
                break
            found += self._prefixed.get((resource_type, name[:length]), ())
        return found

    def of_type(self, resource_type: ResourceType) -> list[AclBinding]:
        """Every binding on resources of ``resource_type``."""
        return [b for b in self.bindings if b.resource_type is resource_type]


def _grants(binding_operation: Operation, operation: Operation) -> bool:
    """Whether an ALLOW of ``binding_operation`` allows ``operation``."""
    return binding_operation in (operation, Operation.ALL) or binding_operation in IMPLIED_BY.get(
        operation, ()
    )


def _covers(deny: AclBinding, allow: AclBinding) -> bool:
    """Whether every resource ``allow``'s pattern covers is also covered by ``deny``'s."""
    if deny.pattern_type is PatternType.LITERAL:
        return deny.resource_name == WILDCARD or (
            allow.pattern_type is PatternType.LITERAL and deny.resource_name == allow.resource_name
        )
    return allow.resource_name.startswith(deny.resource_name) and not (
        allow.pattern_type is PatternType.LITERAL and allow.resource_name == WILDCARD
    )


def _is_internal(resource_type: ResourceType, name: str) -> bool:
    return resource_type is ResourceType.TOPIC and name.startswith("__")


class StandardAuthorizer:
    """Kafka's decision (module docstring) over the snapshot ``snapshot()`` gives at each call."""

    enabled = True

    def __init__(
        self,
        snapshot: Callable[[], AclSnapshot],
        *,
        super_users: Sequence[str] = (),
        allow_everyone_if_no_acl_found: bool = False,
    ) -> None:
        self._snapshot = snapshot
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        # Decisions of the current snapshot: a request's decision is then one dictionary lookup.
        self._decided: dict[tuple[str, str, Operation, ResourceType, str], bool] = {}
        self._decided_for: AclSnapshot | None = None

    def authorize(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> bool:
        if principal in self.super_users:
            return True
        snapshot = self._snapshot()
        if snapshot is not self._decided_for or len(self._decided) >= _MAX_DECISIONS:
            self._decided, self._decided_for = {}, snapshot
        key = (principal, host, operation, resource_type, name)
        decided = self._decided.get(key)
        if decided is None:
            if resource_type is ResourceType.CLUSTER:
                name = CLUSTER_NAME
            decided = self._decided[key] = self._decide(
                snapshot.covering(resource_type, name), principal, host, operation,
                open_if_none=not _is_internal(resource_type, name),
            )
        return decided

    def _decide(
        self, covering: list[AclBinding], principal: str, host: str, operation: Operation,
        *, open_if_none: bool,
    ) -> bool:
        if not covering:
            return self.allow_everyone_if_no_acl_found and open_if_none
        mine = [b for b in covering if b.matches_caller(principal, host)]
        if any(b.permission is Permission.DENY and b.operation in (operation, Operation.ALL) for b in mine):
            return False
        return any(b.permission is Permission.ALLOW and _grants(b.operation, operation) for b in mine)

    def authorize_any(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType
    ) -> bool:
        """Kafka's ``authorizeByResourceType``: some ALLOW for the caller whose pattern no DENY of the
        caller covers (a LITERAL DENY of the same name or of ``*``, a PREFIXED DENY of a prefix)."""
        if principal in self.super_users:
            return True
        of_type = self._snapshot().of_type(resource_type)
        if not of_type:
            return self.allow_everyone_if_no_acl_found
        mine = [b for b in of_type if b.matches_caller(principal, host)]
        denies = [
            b for b in mine if b.permission is Permission.DENY and b.operation in (operation, Operation.ALL)
        ]
        return any(
            b.permission is Permission.ALLOW and _grants(b.operation, operation)
            and not any(_covers(deny, b) for deny in denies)
            for b in mine
        )

    def authorized_operations(
        self, principal: str, host: str, resource_type: ResourceType, name: str
    ) -> list[Operation]:
        return [
            op for op in operations_of(resource_type)
            if self.authorize(principal, host, op, resource_type, name)
        ]

