"""The hot produce routes as plain Starlette routes: the same handler without FastAPI's per-request work.

``POST /v1/topics/{topic}/records`` and ``POST /v1/topics/{topic}/partitions/{partition}/records``
are what most HTTP users send, one record per request. FastAPI's route costs a dependency solve, a
query, path and header validation and a response wrapper per request, before and after the handler.
These routes sit first in the router (``raw_produce_route``, on by default) and take the requests
whose parameters need no validation beyond what is done here: ``acks`` absent or one of its
values, no format parameters (those are NDJSON's), a topic of 1 to 249 characters, a partition
written as a plain number up to 2^31-1, and a JSON or binary batch body. They call the very handler
of the FastAPI route (``app.routes.records._produce``), so parsing, limits, idempotency and the
answers are the same code; the middleware (limits, metrics) and the exception handlers (every error
a problem+json) wrap them as they wrap any route. Any other request — NDJSON, a format parameter,
an unknown query parameter, a value out of range — does not match here and goes on to the FastAPI
route, which validates and answers it exactly as it always has. The OpenAPI spec is the FastAPI
route's; ``tests/api/test_raw_routes.py`` keeps the two in agreement over a table of requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from app.broker.batch import BATCH_MEDIA_TYPE
from app.broker.produce import INT32_MAX
from app.routes.records import _produce

__all__ = ["RawProduceRoute", "raw_produce_routes"]

_ACKS = {b"": "all", b"acks=0": "0", b"acks=1": "1", b"acks=all": "all", b"acks=-1": "-1"}
_BODY_TYPES = frozenset({b"application/json", BATCH_MEDIA_TYPE.encode()})
_MAX_TOPIC = 249

#: A per-request check run before the handler reads anything (authorization). ``None`` runs none.
RequestCheck = Callable[[Request], Awaitable[None]]


def _fast_headers(scope: Scope) -> tuple[bool, str | None]:
    """Whether the request's body type is one this route takes, and its Idempotency-Key."""
    key: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if value.split(b";", 1)[0].strip().lower() not in _BODY_TYPES:
                return False, None
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
    return True, key


class RawProduceRoute(Route):
    """A produce route that matches only requests it can serve without FastAPI (module docstring)."""

    def __init__(
        self, path: str, name: str, *, to_partition: bool, check: RequestCheck | None = None
    ) -> None:
        super().__init__(path, self._serve, methods=["POST"], name=name, include_in_schema=False)
        self.app = self._serve  # an ASGI app itself: no request/response wrapper per request
        self.tags = ["records"]  # the metrics label is the FastAPI route's operation id
        self.to_partition = to_partition
        self.check = check

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.FULL or scope["query_string"] not in _ACKS:
            return Match.NONE, {}
        params: dict[str, Any] = child["path_params"]
        if not 1 <= len(params["topic"]) <= _MAX_TOPIC:
            return Match.NONE, {}
        if self.to_partition:
            text = params["partition"]
            if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
                return Match.NONE, {}
            if int(text) > INT32_MAX:
                return Match.NONE, {}
        fast, _ = _fast_headers(scope)
        return (match, child) if fast else (Match.NONE, {})

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self.check is not None:
            await self.check(request)  # the one place a per-request check (authorization) runs
        params = scope["path_params"]
        partition = int(params["partition"]) if self.to_partition else None
        _, idempotency_key = _fast_headers(scope)
        response = await _produce(
            request,
            params["topic"],
            partition,
            _ACKS[scope["query_string"]],
            None,
            None,
            None,
            idempotency_key,
        )
        await response(scope, receive, send)


def raw_produce_routes(check: RequestCheck | None = None) -> list[RawProduceRoute]:
    """The two raw produce routes, to be put ahead of the FastAPI routes of the same paths."""
    return [
        RawProduceRoute("/v1/topics/{topic}/records", "produce", to_partition=False, check=check),
        RawProduceRoute(
            "/v1/topics/{topic}/partitions/{partition}/records",
            "produce_to_partition",
            to_partition=True,
            check=check,
        ),
    ]
