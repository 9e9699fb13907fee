"""Pure ASGI middleware of the broker: request metrics, the in-flight limit and the body-size limit.

- Metrics: every HTTP request is counted and timed under its route's operation id (``unmatched`` when
  no route matched), so ``/metrics`` shows counts and latency by operation.
- In-flight limit: at most ``max_inflight_requests`` requests are being handled at once; the next one is
  answered 503 (error_code 50303) with ``Retry-After`` at once instead of queueing without bound. A
  request holds its slot until its answer starts, so long-lived streams (SSE, NDJSON) that have
  started answering do not starve the rest. Health, readiness and metrics are never refused.
- Body limit: a ``Content-Length`` above ``max_request_bytes`` is refused with 413 (41302) before the
  body is read; a chunked body is counted as it streams and refused the moment it crosses the limit.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.error_codes import ErrorCode
from app.errors import problem_response
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
        self, app: ASGIApp, *, max_inflight: int, max_body_bytes: int, retry_after_s: int, metrics: Metrics
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.max_body_bytes = max_body_bytes
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.metrics.rejected_requests.labels("overloaded").inc()
            response = problem_response(
                ErrorCode.OVERLOADED,
                f"the broker is serving {self.inflight} requests, its limit; retry later",
                retry_after_s=self.retry_after_s,
            )
            await response(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            self.metrics.rejected_requests.labels("too_large").inc()
            response = problem_response(
                ErrorCode.REQUEST_TOO_LARGE,
                f"request body of {declared} bytes is over the limit of {self.max_body_bytes} bytes",
                extra={"limit": self.max_body_bytes},
            )
            await response(scope, receive, send)
            return

        received = 0
        holding = True
        self.inflight += 1

        def release() -> None:
            nonlocal holding
            if holding:
                holding = False
                self.inflight -= 1

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
            return message

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive_limited, send_releasing)
        finally:
            release()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
