"""Pure ASGI middleware of the broker: request metrics, the in-flight limit and the body-size limit.

- Metrics: every HTTP request is counted and timed under its route's operation id (``unmatched`` when
  no route matched), so ``/metrics`` shows counts and latency by operation.
- Request pools (``app/limits.py``): at most ``max_inflight_requests`` requests are being handled at
  once; the next one is answered 503 (error_code 50303) with ``Retry-After`` at once instead of
  queueing without bound. A request holds its work slot until its answer starts, so long-lived
  streams (SSE, NDJSON) that have started answering do not starve the rest; long polls and event
  streams move to pools of their own (``scope["tidelog.slot"]``). Health, readiness and metrics are
  never refused.
- Body limit: a ``Content-Length`` above ``max_request_bytes`` is refused with 413 (41302) before the
  body is read; a chunked body is counted as it streams and refused the moment it crosses the limit.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.error_codes import ErrorCode
from app.errors import CodedHTTPException, problem_response
from app.limits import PoolFullError, RequestLimits, client_of
from app.metrics import Metrics

__all__ = ["LimitsMiddleware", "MetricsMiddleware", "operation_id"]

_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def operation_id(route: Any) -> str:
    """A stable operationId, ``{tag}-{route name}`` (``topics-create_topic``); also the metrics label."""
    explicit = getattr(route, "operation_id", None)
    if explicit:
        return str(explicit)
    tags = getattr(route, "tags", None)
    tag = str(tags[0]) if tags else "default"
    return f"{tag}-{route.name}"


def _operation(scope: Scope) -> str:
    route = scope.get("route")
    if route is None or not getattr(route, "name", None):
        return "unmatched"
    return operation_id(route)


class MetricsMiddleware:
    """Counts and times every HTTP request by operation id and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children cached: ``labels()`` costs more than the increment itself.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        inflight = self.metrics.inflight_requests
        inflight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            inflight.dec()
            operation = _operation(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded label values
            key = (operation, method, status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.metrics.requests.labels(operation, key[1], str(status))
            counter.inc()
            timer = self._timers.get(operation)
            if timer is None:
                timer = self._timers[operation] = self.metrics.request_seconds.labels(operation)
            timer.observe(time.perf_counter() - start)


class LimitsMiddleware:
    """Refuses requests beyond the in-flight limit (503) and bodies beyond the size limit (413)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: RequestLimits,
        max_body_bytes: int,
        retry_after_s: int,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.limits = limits
        self.max_body_bytes = max_body_bytes
        self.retry_after_s = retry_after_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        slot = self.limits.slot(client_of(scope))
        declared = _content_length(scope)
        if declared is None and not _chunked(scope):
            declared = 0
        if declared == 0:
            try:
                slot.start_work()  # no body to wait for: the request is work from now on
            except PoolFullError as exc:
                self.metrics.rejected_requests.labels("overloaded").inc()
                response = problem_response(exc.code, exc.detail, retry_after_s=self.retry_after_s)
                await response(scope, receive, send)
                return
        elif declared is not None and declared > self.max_body_bytes:
            self.metrics.rejected_requests.labels("too_large").inc()
            response = problem_response(
                ErrorCode.REQUEST_TOO_LARGE,
                f"request body of {declared} bytes is over the limit of {self.max_body_bytes} bytes",
                extra={"limit": self.max_body_bytes},
            )
            await response(scope, receive, send)
            return

        received = 0
        scope["tidelog.slot"] = slot

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    self.metrics.rejected_requests.labels("too_large").inc()
                    raise HTTPException(
                        413, f"request body is over the limit of {self.max_body_bytes} bytes"
                    )
                if not message.get("more_body", False):
                    # The whole body is here: now the request becomes work (503 when the pool is full).
                    try:
                        slot.start_work()
                    except PoolFullError as exc:
                        self.metrics.rejected_requests.labels("overloaded").inc()
                        raise CodedHTTPException(
                            exc.code, exc.detail, retry_after_s=self.retry_after_s
                        ) from None
            return message

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                slot.end_work()
            await send(message)

        try:
            await self.app(scope, receive_limited, send_releasing)
        finally:
            slot.release()


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
