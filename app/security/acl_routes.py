"""``ROUTE_ACLS``: for every route of the broker, the operations a caller needs, with Kafka's mappings.

A row is ``(method, path template) → (Need, ...)``; every need must be met. A need names its
resource by a path parameter (``"{topic}"``), the cluster (:data:`CLUSTER`), the request body
(:data:`BODY`: the handler checks it with ``app.security.authorizer_middleware.require`` once the
body is parsed) or "some resource of the type" (:data:`ANY`, Kafka's ``authorizeByResourceType``,
KIP-679's rule for ``POST /v1/producers``). An empty row (:data:`OPEN`) needs nothing; a list whose
answer is filtered per caller (:data:`FILTERED`) needs nothing up front.

The mappings are Kafka's: produce TOPIC WRITE; fetch and SSE TOPIC READ; offsets lookup TOPIC
DESCRIBE; delete-records TOPIC DELETE; group join/poll/commit GROUP READ (and TOPIC READ on the
topics named); group describe and committed offsets GROUP DESCRIBE; group delete GROUP DELETE;
topic creation TOPIC CREATE or CLUSTER CREATE; configs DESCRIBE_CONFIGS / ALTER_CONFIGS; partition
increase TOPIC ALTER; topic deletion TOPIC DELETE; reassignment CLUSTER ALTER; log dirs CLUSTER
DESCRIBE; replication CLUSTER_ACTION (the inter-broker principal); ACLs CLUSTER ALTER / DESCRIBE;
quotas CLUSTER ALTER_CONFIGS / DESCRIBE_CONFIGS (KIP-546).

``GET /v1/cluster`` is open, as Kafka's Metadata and DescribeCluster are: every client loads the
broker list from it before its first produce; its ``authorized_operations`` are given only to a
caller with CLUSTER DESCRIBE.

A route added anywhere needs its row here in the same commit: ``tests/security/test_route_table.py``
walks the application's router and names every route without one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from app.security.acl import CLUSTER_NAME, Operation, ResourceType

__all__ = ["ANY", "BODY", "CLUSTER", "FILTERED", "OPEN", "ROUTE_ACLS", "Need", "RouteMatch", "match_route"]

#: The resource is the cluster.
CLUSTER: Final = CLUSTER_NAME
#: The resource names come from the body; the handler checks them.
BODY: Final = "<body>"
#: Some resource of the type will do.
ANY: Final = "<any>"

T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
Op = Operation


@dataclass(frozen=True, slots=True)
class Need:
    """One operation on one resource; ``or_cluster``: the same operation on the cluster will do."""

    resource_type: ResourceType
    operation: Operation
    name: str = CLUSTER
    or_cluster: bool = False


#: Needs nothing: probes, the spec and its pages, the console's static files.
OPEN: Final[tuple[Need, ...]] = ()
#: Needs nothing up front; the handler lists only what the caller may DESCRIBE.
FILTERED: Final[tuple[Need, ...]] = ()

_TOPIC = "{topic}"
_GROUP = "{group}"

ROUTE_ACLS: Final[dict[tuple[str, str], tuple[Need, ...]]] = {
    # service, spec and console (static mounts listed as open explicitly)
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/openapi.json"): OPEN,
    ("GET", "/openapi-3.2.json"): OPEN,
    ("GET", "/api-docs-assets/{path:path}"): OPEN,
    ("GET", "/docs"): OPEN,
    ("GET", "/docs/oauth2-redirect"): OPEN,
    ("GET", "/redoc"): OPEN,
    ("GET", "/ui"): OPEN,
    ("GET", "/ui/config.json"): OPEN,
    ("GET", "/ui/{path:path}"): OPEN,
    # cluster
    ("GET", "/v1/cluster"): OPEN,
    ("GET", "/v1/log-dirs"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/topics/{topic}/partitions/{partition}/reassign"): (Need(C, Op.ALTER),),
    # topics
    ("GET", "/v1/topics"): FILTERED,
    ("POST", "/v1/topics"): (Need(T, Op.CREATE, BODY, or_cluster=True),),
    ("GET", "/v1/topics/{topic}"): (Need(T, Op.DESCRIBE, _TOPIC),),
    ("PATCH", "/v1/topics/{topic}"): (Need(T, Op.ALTER, _TOPIC),),
    ("DELETE", "/v1/topics/{topic}"): (Need(T, Op.DELETE, _TOPIC),),
    ("GET", "/v1/topics/{topic}/configs"): (Need(T, Op.DESCRIBE_CONFIGS, _TOPIC),),
    ("PUT", "/v1/topics/{topic}/configs"): (Need(T, Op.ALTER_CONFIGS, _TOPIC),),
    # records
    ("POST", "/v1/topics/{topic}/records"): (Need(T, Op.WRITE, _TOPIC),),
    ("POST", "/v1/topics/{topic}/partitions/{partition}/records"): (Need(T, Op.WRITE, _TOPIC),),
    ("GET", "/v1/topics/{topic}/partitions/{partition}/records"): (Need(T, Op.READ, _TOPIC),),
    ("GET", "/v1/topics/{topic}/partitions/{partition}/offsets"): (Need(T, Op.DESCRIBE, _TOPIC),),
    ("POST", "/v1/topics/{topic}/partitions/{partition}/delete-records"): (Need(T, Op.DELETE, _TOPIC),),
    ("GET", "/v1/topics/{topic}/events"): (Need(T, Op.READ, _TOPIC),),
    ("POST", "/v1/producers"): (Need(T, Op.WRITE, ANY),),
    # groups
    ("GET", "/v1/groups"): FILTERED,
    ("GET", "/v1/groups/{group}"): (Need(G, Op.DESCRIBE, _GROUP),),
    ("DELETE", "/v1/groups/{group}"): (Need(G, Op.DELETE, _GROUP),),
    ("POST", "/v1/groups/{group}/members"): (Need(G, Op.READ, _GROUP), Need(T, Op.READ, BODY)),
    ("POST", "/v1/groups/{group}/members/{member_id}/heartbeat"): (Need(G, Op.READ, _GROUP),),
    ("DELETE", "/v1/groups/{group}/members/{member_id}"): (Need(G, Op.READ, _GROUP),),
    # poll: and TOPIC READ on every assigned topic, checked by the handler at each poll
    ("GET", "/v1/groups/{group}/members/{member_id}/records"): (Need(G, Op.READ, _GROUP),),
    ("POST", "/v1/groups/{group}/members/{member_id}/seek"): (
        Need(G, Op.READ, _GROUP), Need(T, Op.READ, BODY),
    ),
    ("POST", "/v1/groups/{group}/offsets"): (Need(G, Op.READ, _GROUP), Need(T, Op.READ, BODY)),
    ("GET", "/v1/groups/{group}/offsets"): (Need(G, Op.DESCRIBE, _GROUP),),
    ("POST", "/v1/groups/{group}/offsets/reset"): (Need(G, Op.READ, _GROUP), Need(T, Op.READ, BODY)),
    ("GET", "/v1/groups/{group}/events"): (Need(G, Op.READ, _GROUP), Need(T, Op.READ, BODY)),
    # many partitions in one fetch: TOPIC READ on each, checked by the handler (a refusal is that
    # partition's error, as Kafka's Fetch answers TOPIC_AUTHORIZATION_FAILED per partition)
    ("POST", "/v1/fetch"): (Need(T, Op.READ, BODY),),
    # credentials: API keys and password users (Kafka's AlterUserScramCredentials is CLUSTER ALTER,
    # its Describe CLUSTER DESCRIBE); signing in and out, and asking who one is, need nothing
    ("GET", "/v1/keys"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/keys"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/keys/{key_id}"): (Need(C, Op.ALTER),),
    ("GET", "/v1/users"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/users"): (Need(C, Op.ALTER),),
    ("PUT", "/v1/users/{name}"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/users/{name}"): (Need(C, Op.ALTER),),
    ("POST", "/v1/sessions"): OPEN,
    ("DELETE", "/v1/sessions"): OPEN,
    ("GET", "/v1/whoami"): OPEN,
    # tidelog connect (docs/connect.md): connectors are CLUSTER resources, as Kafka Connect's REST API
    # has no ACLs of its own: DESCRIBE to read (and to validate a config), ALTER to change; worker
    # membership and task reports are CLUSTER ALTER (the workers' principal)
    ("GET", "/v1/connect/events"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/connect/tasks/{name}/{task_id}/offsets"): (Need(C, Op.ALTER),),
    ("PUT", "/v1/connect/tasks/{name}/{task_id}/status"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/connect/workers/{worker_id}"): (Need(C, Op.ALTER),),
    ("POST", "/v1/connect/workers/{worker_id}/heartbeat"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connector-plugins"): (Need(C, Op.DESCRIBE),),
    ("GET", "/v1/connector-plugins/{plugin}/config"): (Need(C, Op.DESCRIBE),),
    ("PUT", "/v1/connector-plugins/{plugin}/config/validate"): (Need(C, Op.DESCRIBE),),
    ("GET", "/v1/connectors"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/connectors"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/connectors/{name}"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connectors/{name}"): (Need(C, Op.DESCRIBE),),
    ("GET", "/v1/connectors/{name}/config"): (Need(C, Op.DESCRIBE),),
    ("PATCH", "/v1/connectors/{name}/config"): (Need(C, Op.ALTER),),
    ("PUT", "/v1/connectors/{name}/config"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/connectors/{name}/offsets"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connectors/{name}/offsets"): (Need(C, Op.DESCRIBE),),
    ("PATCH", "/v1/connectors/{name}/offsets"): (Need(C, Op.ALTER),),
    ("PUT", "/v1/connectors/{name}/pause"): (Need(C, Op.ALTER),),
    ("POST", "/v1/connectors/{name}/restart"): (Need(C, Op.ALTER),),
    ("PUT", "/v1/connectors/{name}/resume"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connectors/{name}/status"): (Need(C, Op.DESCRIBE),),
    ("PUT", "/v1/connectors/{name}/stop"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connectors/{name}/tasks"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/connectors/{name}/tasks/{task_id}/restart"): (Need(C, Op.ALTER),),
    ("GET", "/v1/connectors/{name}/tasks/{task_id}/status"): (Need(C, Op.DESCRIBE),),
    ("GET", "/v1/connectors/{name}/topics"): (Need(C, Op.DESCRIBE),),
    ("PUT", "/v1/connectors/{name}/topics/reset"): (Need(C, Op.ALTER),),
    # ACLs and quotas
    ("GET", "/v1/acls"): (Need(C, Op.DESCRIBE),),
    ("POST", "/v1/acls"): (Need(C, Op.ALTER),),
    ("DELETE", "/v1/acls"): (Need(C, Op.ALTER),),
    ("GET", "/v1/quotas"): (Need(C, Op.DESCRIBE_CONFIGS),),
    ("PUT", "/v1/quotas/{principal}"): (Need(C, Op.ALTER_CONFIGS),),
    ("DELETE", "/v1/quotas/{principal}"): (Need(C, Op.ALTER_CONFIGS),),
    # replication between brokers (not in the spec): the inter-broker principal only
    ("POST", "/internal/v1/replication/fetch"): (Need(C, Op.CLUSTER_ACTION),),
    ("GET", "/internal/v1/replication/{topic}/readiness"): (Need(C, Op.CLUSTER_ACTION),),
    ("GET", "/internal/v1/replication/{topic}/{partition}"): (Need(C, Op.CLUSTER_ACTION),),
    ("GET", "/internal/v1/replication/{topic}/{partition}/high-watermark"): (Need(C, Op.CLUSTER_ACTION),),
    ("GET", "/internal/v1/replication/{topic}/{partition}/epoch-end"): (Need(C, Op.CLUSTER_ACTION),),
}

_PARAM = re.compile(r"\{(\w+)(:path)?\}")


def _compile(template: str) -> re.Pattern[str]:
    pattern, last = "", 0
    for param in _PARAM.finditer(template):
        pattern += re.escape(template[last : param.start()])
        pattern += f"(?P<{param.group(1)}>.*)" if param.group(2) else f"(?P<{param.group(1)}>[^/]+)"
        last = param.end()
    return re.compile(pattern + re.escape(template[last:]) + r"\Z")


@dataclass(frozen=True, slots=True)
class RouteMatch:
    template: str
    needs: tuple[Need, ...]
    params: Mapping[str, str]


def _literal_length(template: str) -> int:
    return len(_PARAM.sub("", template))


#: Templates of each method, most literal first, so ``…/{topic}/readiness`` wins over ``…/{partition}``.
_COMPILED: Final[dict[str, list[tuple[re.Pattern[str], str, tuple[Need, ...]]]]] = {}
for (_method, _template), _needs in sorted(ROUTE_ACLS.items(), key=lambda kv: -_literal_length(kv[0][1])):
    _COMPILED.setdefault(_method, []).append((_compile(_template), _template, _needs))


def match_route(method: str, path: str) -> RouteMatch | None:
    """The row for a request (HEAD as GET), or None when no route has this path and method."""
    for pattern, template, needs in _COMPILED.get("GET" if method == "HEAD" else method, ()):
        found = pattern.match(path)
        if found is not None:
            return RouteMatch(template, needs, found.groupdict())
    return None
