"""Where ACLs, quotas and the audit trail meet each request: one ASGI middleware and ``require``.

:class:`SecurityMiddleware` looks the request up in ``ROUTE_ACLS`` (``app.security.acl_routes``),
checks every need that names its resource in the path, the cluster or "some topic", then admits the
request under the principal's quotas, and writes the audit record of a mutation or a denial. It is
plain ASGI, so a raw ASGI route is covered exactly as a FastAPI one; needs that name resources in
the body are checked by the handler with :func:`require` once the body is parsed, and any raw
route can call :func:`require` with its scope alike.

A refusal follows Kafka's rule for not disclosing what exists: a topic or group the caller may not
even DESCRIBE is answered exactly as a missing one (404, 40401 / 40404); one it may describe is 403
(40311 / 40312); a cluster operation is 403 (40313).

With authorization, quotas and audit all off (the default) the middleware passes every request
straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.catalog import Catalog
from app.config import Settings
from app.errors import problem_response
from app.errors_base import TidelogError, UnknownTopicError
from app.groups.errors import UnknownGroupError
from app.security.acl import CLUSTER_NAME, Operation, ResourceType
from app.security.acl_routes import ANY, BODY, RouteMatch, match_route
from app.security.audit import AuditLog
from app.security.authorizer import AllowAllAuthorizer, Authorizer, StandardAuthorizer
from app.security.authorizer_cache import SecurityCache
from app.security.authorizer_errors import (
    ClusterAuthorizationError,
    GroupAuthorizationError,
    QuotaExceededError,
    TopicAuthorizationError,
)
from app.security.principal import principal_of
from app.security.quotas import QuotaDecision, QuotaManager

__all__ = ["Security", "SecurityMiddleware", "authorize", "authorized_operations", "require"]

_AUDITED = "tidelog.audited"
#: Never limited by a quota: an orchestrator's probes and the metrics scrape.
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PRODUCE = frozenset({"/v1/topics/{topic}/records", "/v1/topics/{topic}/partitions/{partition}/records"})
_FETCH = frozenset({
    "/v1/topics/{topic}/partitions/{partition}/records",
    "/v1/groups/{group}/members/{member_id}/records",
})
_STREAMS = frozenset({"/v1/topics/{topic}/events", "/v1/groups/{group}/events"})


class Security:
    """The authorizer, the ACL and quota cache, the quota accounting and the audit log of one broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = SecurityCache(refresh_interval_ms=settings.acl_refresh_interval_ms)
        self.authorizer: Authorizer = (
            StandardAuthorizer(
                self.cache.snapshot,
                super_users=[u.strip() for u in settings.super_users.split(";") if u.strip()],
                allow_everyone_if_no_acl_found=settings.allow_everyone_if_no_acl_found,
            )
            if settings.authorizer_enabled
            else AllowAllAuthorizer()
        )
        self.quotas = QuotaManager(lambda: self.cache.quotas) if settings.quotas_enabled else None
        if self.quotas is not None:
            self.cache.on_change(self.quotas.limits_changed)
        self.audit = (
            AuditLog(file=settings.audit_file) if settings.audit_enabled else None
        )

    @property
    def active(self) -> bool:
        return self.authorizer.enabled or self.quotas is not None or self.audit is not None

    async def start(self, catalog: Catalog, broker: Any, topics: Any) -> None:
        if self.authorizer.enabled or self.quotas is not None:
            await self.cache.start(catalog)
        if self.audit is not None:
            await self.audit.start(broker, topics)

    async def close(self) -> None:
        if self.audit is not None:
            await self.audit.close()
        await self.cache.close()


def _security(scope: Mapping[str, Any]) -> Security:
    security: Security = scope["app"].state.security
    return security


def _host(scope: Mapping[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def authorize(
    scope: Mapping[str, Any], operation: Operation, resource_type: ResourceType, name: str
) -> bool:
    """Whether the request of ``scope`` may do ``operation`` on the resource."""
    return _security(scope).authorizer.authorize(
        principal_of(scope).name, _host(scope), operation, resource_type, name
    )


def authorized_operations(
    scope: Mapping[str, Any], resource_type: ResourceType, name: str
) -> list[str]:
    """The operations the caller may do on the resource, as KIP-430's ``authorized_operations``."""
    return [
        str(op) for op in _security(scope).authorizer.authorized_operations(
            principal_of(scope).name, _host(scope), resource_type, name
        )
    ]


def _refusal(
    authorizer: Authorizer, principal: str, host: str, operation: Operation,
    resource_type: ResourceType, name: str,
) -> TidelogError:
    """The answer to a denied operation: unknown when not even DESCRIBE is allowed, else 403."""
    described = authorizer.authorize(principal, host, Operation.DESCRIBE, resource_type, name)
    if resource_type is ResourceType.TOPIC:
        if not described and operation is not Operation.CREATE:  # a creation names a new topic
            return UnknownTopicError(f"topic {name!r} does not exist", topic=name)
        return TopicAuthorizationError(f"not authorized to {operation} topic {name!r}", topic=name)
    if resource_type is ResourceType.GROUP:
        if not described:
            return UnknownGroupError(f"no group {name!r}")
        return GroupAuthorizationError(f"not authorized to {operation} group {name!r}", group=name)
    return ClusterAuthorizationError(f"not authorized to {operation} the cluster")


def _check(
    authorizer: Authorizer, principal: str, host: str, operation: Operation,
    resource_type: ResourceType, name: str, *, or_cluster: bool = False,
) -> TidelogError | None:
    if authorizer.authorize(principal, host, operation, resource_type, name):
        return None
    if or_cluster and authorizer.authorize(principal, host, operation, ResourceType.CLUSTER, CLUSTER_NAME):
        return None
    return _refusal(authorizer, principal, host, operation, resource_type, name)


def _action(scope: Mapping[str, Any]) -> str:
    found = match_route(scope.get("method", "GET"), scope.get("path", ""))
    return f"{scope.get('method')} {found.template if found else scope.get('path')}"


def require(
    scope: Mapping[str, Any], operation: Operation, resource_type: ResourceType, name: str,
    *, or_cluster: bool = False,
) -> None:
    """Raises the refusal (404 or 403, audited) unless the caller may do ``operation`` on the resource.

    ``or_cluster``: the same operation on the cluster will do (topic creation's CREATE)."""
    security = _security(scope)
    if not security.authorizer.enabled:
        return
    refused = _check(security.authorizer, principal_of(scope).name, _host(scope), operation,
                     resource_type, name, or_cluster=or_cluster)
    if refused is None:
        return
    if security.audit is not None:
        security.audit.record(scope, action=_action(scope), resource=f"{resource_type}:{name}",
                              decision="deny", status=refused.code.http_status)
        if isinstance(scope, dict):
            scope[_AUDITED] = True  # the middleware does not record the same request again
    raise refused


def _resource(found: RouteMatch) -> str:
    for need in found.needs:
        if need.name.startswith("{"):
            return f"{need.resource_type}:{found.params.get(need.name[1:-1], '')}"
    for param, kind in (("topic", ResourceType.TOPIC), ("group", ResourceType.GROUP)):
        if param in found.params:
            return f"{kind}:{found.params[param]}"
    return f"{ResourceType.CLUSTER}:{CLUSTER_NAME}"


def _is_long_poll(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"max_wait_ms":
            return value.strip(b"0") != b"" and value.isdigit()
    return False


class SecurityMiddleware:
    """Authorization, quotas and audit for every HTTP request (module docstring)."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.security.active:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        found = match_route(method, scope["path"])
        if found is None:  # no such route: the router answers 404 or 405
            await self.app(scope, receive, send)
            return
        refused = self._authorize(scope, found)
        if refused is not None:
            await self._refuse(scope, receive, send, found, refused)
            return
        quotas = self.security.quotas
        if quotas is None or found.template in _PROBES:
            await self._serve_audited(scope, receive, send, found)
            return
        await self._serve_with_quotas(scope, receive, send, found, quotas)

    def _authorize(self, scope: Scope, found: RouteMatch) -> TidelogError | None:
        authorizer = self.security.authorizer
        if not authorizer.enabled:
            return None
        principal, host = principal_of(scope).name, _host(scope)
        for need in found.needs:
            if need.name == BODY:
                continue
            if need.name == ANY:
                if not authorizer.authorize_any(principal, host, need.operation, need.resource_type):
                    return ClusterAuthorizationError(
                        f"not authorized to {need.operation} any {need.resource_type.lower()}"
                    ) if need.resource_type is ResourceType.CLUSTER else TopicAuthorizationError(
                        f"not authorized to {need.operation} any {need.resource_type.lower()}"
                    )
                continue
            name = found.params.get(need.name[1:-1], "") if need.name.startswith("{") else need.name
            refused = _check(authorizer, principal, host, need.operation, need.resource_type, name,
                             or_cluster=need.or_cluster)
            if refused is not None:
                return refused
        return None

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, found: RouteMatch, refused: TidelogError
    ) -> None:
        if self.security.audit is not None:
            self.security.audit.record(
                scope, action=f"{scope['method']} {found.template}", resource=_resource(found),
                decision="deny", status=refused.code.http_status,
            )
        response = problem_response(refused.code, refused.detail, extra=refused.extra)
        await response(scope, receive, send)

    async def _serve_audited(self, scope: Scope, receive: Receive, send: Send, found: RouteMatch) -> None:
        audit = self.security.audit
        if audit is None or scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if not scope.get(_AUDITED):
                audit.record(scope, action=f"{scope['method']} {found.template}",
                             resource=_resource(found),
                             decision="allow" if status < 400 else "error", status=status)

    async def _serve_with_quotas(
        self, scope: Scope, receive: Receive, send: Send, found: RouteMatch, quotas: QuotaManager
    ) -> None:
        principal = principal_of(scope).name
        template = found.template
        streaming = template in _STREAMS
        long_poll = streaming or (template in _FETCH and _is_long_poll(scope))
        produce = template in _PRODUCE and scope["method"] == "POST"
        fetch = (template in _FETCH and scope["method"] == "GET") or streaming
        refusal = quotas.admit(principal, "request")
        if refusal is None and produce:
            refusal = quotas.admit(principal, "produce")
        if refusal is None and fetch and not streaming:
            refusal = quotas.admit(principal, "fetch")
        if refusal is None and long_poll:
            refusal = quotas.open_stream(principal)
        if refusal is not None:
            await self._over_quota(scope, receive, send, found, refusal)
            return
        quotas.charge(principal, "request", 1)

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                quotas.charge(principal, "produce", len(message.get("body", b"")))
            return message

        async def counted_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body":
                wait = quotas.charge(principal, "fetch", len(message.get("body", b"")))
                if streaming and wait > 0:  # SSE is paced, never cut
                    await asyncio.sleep(wait)

        try:
            await self._serve_audited(
                scope, counted_receive if produce else receive, counted_send if fetch else send, found
            )
        finally:
            if long_poll:
                quotas.close_stream(principal)

    async def _over_quota(
        self, scope: Scope, receive: Receive, send: Send, found: RouteMatch, refusal: QuotaDecision
    ) -> None:
        error = QuotaExceededError(
            f"quota {refusal.limit} of {principal_of(scope).name} exceeded on this broker",
            retry_after_ms=refusal.retry_after_ms, quota=refusal.limit,
        )
        response = problem_response(error.code, error.detail, extra=error.extra,
                                    retry_after_s=refusal.retry_after_s)
        await response(scope, receive, send)
