"""Kafka's ACL model: bindings, filters and the implications between operations.

A binding (Kafka's ``AclBinding``) is a resource pattern plus an access control entry::

    (principal | User:*, host | *, resource type, pattern type, resource name, operation, ALLOW | DENY)

- resource types: TOPIC, GROUP, CLUSTER (its one name is ``kafka-cluster``), TRANSACTIONAL_ID
  (reserved for transactions; nothing checks it yet);
- pattern types: LITERAL (the name exactly, or ``*`` for every resource of the type) and PREFIXED
  (every name that starts with it);
- operations: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS,
  CLUSTER_ACTION and ALL.

An ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and one of ALTER_CONFIGS allows
DESCRIBE_CONFIGS (Kafka's ``AclEntry.supportedOperations`` implications); the implications are for
ALLOW only: a DENY READ does not deny DESCRIBE. ALL matches every operation, in an ALLOW and in a
DENY alike.

A filter (Kafka's ``AclBindingFilter``, what ``kafka-acls --list`` and ``--remove`` take) leaves any
field unset to match every value; its pattern type ANY matches both, MATCH every binding that
applies to the named resource (LITERAL equal or ``*``, PREFIXED a prefix of the name).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "CLUSTER_NAME",
    "IMPLIED_BY",
    "WILDCARD",
    "WILDCARD_PRINCIPAL",
    "AclBinding",
    "AclBindingFilter",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceType",
    "applies_to",
    "operations_of",
]

#: The name of the one CLUSTER resource, as in Kafka.
CLUSTER_NAME: Final = "kafka-cluster"
#: A LITERAL name, or a host, that matches everything.
WILDCARD: Final = "*"
#: The principal that matches every caller.
WILDCARD_PRINCIPAL: Final = "User:*"


class ResourceType(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    CLUSTER = "CLUSTER"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"


class PatternType(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    ALL = "ALL"
    READ = "READ"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DESCRIBE = "DESCRIBE"
    CLUSTER_ACTION = "CLUSTER_ACTION"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"


class Permission(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"


#: operation asked for → the operations whose ALLOW also allows it (besides itself and ALL).
IMPLIED_BY: Final[dict[Operation, frozenset[Operation]]] = {
    Operation.DESCRIBE: frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}

#: The operations that make sense on each resource type (Kafka's per-resource operation lists);
#: ``authorized_operations`` reports a subset of these.
OPERATIONS_OF: Final[dict[ResourceType, tuple[Operation, ...]]] = {
    ResourceType.TOPIC: (
        Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DELETE, Operation.ALTER,
        Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Operation.READ, Operation.DELETE, Operation.DESCRIBE),
    ResourceType.CLUSTER: (
        Operation.CREATE, Operation.ALTER, Operation.DESCRIBE, Operation.CLUSTER_ACTION,
        Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS,
    ),
    ResourceType.TRANSACTIONAL_ID: (Operation.WRITE, Operation.DESCRIBE),
}


def operations_of(resource_type: ResourceType) -> tuple[Operation, ...]:
    """The operations that apply to ``resource_type``."""
    return OPERATIONS_OF[resource_type]


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: who (``principal``, ``host``) may or may not do ``operation`` on which resources."""

    principal: str
    host: str
    resource_type: ResourceType
    pattern_type: PatternType
    resource_name: str
    operation: Operation
    permission: Permission

    def matches_resource(self, resource_type: ResourceType, name: str) -> bool:
        """Whether this binding's pattern covers the resource ``(resource_type, name)``."""
        return self.resource_type is resource_type and applies_to(
            self.pattern_type, self.resource_name, name
        )

    def matches_caller(self, principal: str, host: str) -> bool:
        """Whether this binding's principal and host cover the caller."""
        return self.principal in (principal, WILDCARD_PRINCIPAL) and self.host in (host, WILDCARD)


def applies_to(pattern_type: PatternType, pattern: str, name: str) -> bool:
    """Whether a pattern covers ``name``: LITERAL equal (or ``*``), PREFIXED a prefix of it."""
    if pattern_type is PatternType.LITERAL:
        return pattern in (name, WILDCARD)
    return name.startswith(pattern)


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """Which bindings ``/v1/acls`` lists or deletes: a ``None`` field matches any value.

    ``pattern_type``: a :class:`PatternType`, ``"ANY"`` (either, with the name compared exactly) or
    ``"MATCH"`` (every binding that applies to the resource named by ``resource_name``).
    """

    principal: str | None = None
    host: str | None = None
    resource_type: ResourceType | None = None
    pattern_type: PatternType | str = "ANY"
    resource_name: str | None = None
    operation: Operation | None = None
    permission: Permission | None = None

    def matches(self, binding: AclBinding) -> bool:
        """Whether ``binding`` passes this filter."""
        if self.principal is not None and binding.principal != self.principal:
            return False
        if self.host is not None and binding.host != self.host:
            return False
        if self.resource_type is not None and binding.resource_type is not self.resource_type:
            return False
        if self.operation is not None and binding.operation is not self.operation:
            return False
        if self.permission is not None and binding.permission is not self.permission:
            return False
        if self.pattern_type == "MATCH":
            return self.resource_name is None or applies_to(
                binding.pattern_type, binding.resource_name, self.resource_name
            )
        if self.pattern_type != "ANY" and binding.pattern_type != self.pattern_type:
            return False
        return self.resource_name is None or binding.resource_name == self.resource_name
