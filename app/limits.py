"""Request pools: work in flight, parked long polls, open event streams; bounded overall and per client.

A request holds one slot of one pool at a time (``RequestSlot``):

- **work** (``max_inflight_requests``): a request takes a slot once it has its whole body (at once
  when it has none); the slot is freed when its answer starts, so an answer that streams for long
  does not hold it, nor does an upload still arriving. Full → 503 50303.
- **parked** (``max_parked_requests``, ``max_parked_requests_per_client``): a fetch or group poll
  with ``max_wait_ms > 0`` moves here before it waits for data (``RequestSlot.park``), so 2,000
  long polls waiting 30 s do not fill the work pool and make every produce 503. Full → 503 50311
  overall, 429 42903 for one client.
- **streams** (``max_sse_streams``, ``max_sse_streams_per_client``): an SSE stream moves here
  before its answer starts (``RequestSlot.stream``) and holds it for the life of the connection.
  Full → 503 50312 overall, 429 42904 for one client. When the last open stream ends,
  ``on_streams_idle`` runs (the app gives the memory of the burst back to the kernel).

The client is ``scope["client"]``'s host: the peer's address, or the forwarded one when the peer
is a trusted proxy (``forwarded_allow_ips``; uvicorn's ``ProxyHeadersMiddleware`` rewrites the
scope before these pools see it), so clients behind one load balancer are not one client.
Everything runs on the event loop: plain counters, no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "PoolFullError", "RequestLimits", "RequestSlot", "client_of", "parked", "slot_of", "until_stopping",
]

T = TypeVar("T")

class PoolFullError(TidelogError):
    """A pool is full: overall (503) or for this client (429); retriable after ``Retry-After``."""

    retriable = True


class TooManyWaitersError(PoolFullError):
    code = ErrorCode.TOO_MANY_WAITERS


class TooManyWaitersPerClientError(PoolFullError):
    code = ErrorCode.TOO_MANY_WAITERS_PER_CLIENT


class TooManyStreamsError(PoolFullError):
    code = ErrorCode.TOO_MANY_STREAMS


class TooManyStreamsPerClientError(PoolFullError):
    code = ErrorCode.TOO_MANY_STREAMS_PER_CLIENT


class _OverloadedError(PoolFullError):
    code = ErrorCode.OVERLOADED


def client_of(scope: dict[str, object] | object) -> str:
    """The client address of an ASGI scope ("-" when the server gave none)."""
    client = scope.get("client") if isinstance(scope, dict) else None
    if isinstance(client, tuple | list) and client:
        return str(client[0])
    return "-"


@dataclass(slots=True)
class _Bounded:
    limit: int
    per_client: int
    total: int = 0
    clients: Counter[str] = field(default_factory=Counter)

    def take(
        self, client: str, overall: type[PoolFullError], mine: type[PoolFullError], what: str, setting: str
    ) -> None:
        if self.total >= self.limit:
            raise overall(
                f"the broker holds {self.total} {what}, its limit ({setting}); retry later",
                limit=self.limit,
            )
        if self.clients[client] >= self.per_client:
            raise mine(
                f"client {client} holds {self.clients[client]} {what}, the limit per client "
                f"({setting}_per_client); retry later",
                limit=self.per_client,
            )
        self.total += 1
        self.clients[client] += 1

    def give(self, client: str) -> None:
        self.total -= 1
        left = self.clients[client] - 1
        if left:
            self.clients[client] = left
        else:
            del self.clients[client]  # no entry kept per client that has gone


class RequestLimits:
    """The three pools of one app (``app.state.limits``)."""

    def __init__(
        self,
        *,
        max_inflight: int,
        max_parked: int,
        max_parked_per_client: int,
        max_streams: int,
        max_streams_per_client: int,
        on_streams_idle: Callable[[], None] = lambda: None,
    ) -> None:
        self.max_inflight = max_inflight
        self.on_streams_idle = on_streams_idle
        self.inflight = 0
        self.parked = _Bounded(max_parked, max_parked_per_client)
        self.streams = _Bounded(max_streams, max_streams_per_client)

    def slot(self, client: str) -> RequestSlot:
        """The slot of a new request from ``client``, holding nothing yet."""
        return RequestSlot(self, client)


class RequestSlot:
    """One request's place in the pools; ``release`` frees whatever it holds (idempotent).

    The work slot is taken by ``start_work``: at once for a request without a body, once the body
    has arrived for one with a body (a client trickling its upload holds a connection, bounded by
    the connection limits and the minimum body rate, never a work slot), and never after the answer
    started (``end_work``).
    """

    __slots__ = ("_limits", "answered", "client", "held", "working")

    def __init__(self, limits: RequestLimits, client: str) -> None:
        self._limits = limits
        self.client = client
        self.working = False
        self.answered = False
        self.held: Literal["parked", "streams"] | None = None

    def start_work(self) -> None:
        """Take a work slot (no-op when held or answered); ``PoolFullError`` (503 50303) when full."""
        if self.working or self.answered or self.held is not None:
            return
        limits = self._limits
        if limits.inflight >= limits.max_inflight:
            raise _OverloadedError(
                f"the broker is serving {limits.inflight} requests, its limit (max_inflight_requests); "
                "retry later",
                limit=limits.max_inflight,
            )
        limits.inflight += 1
        self.working = True

    def end_work(self) -> None:
        """The answer started: free the work slot (a parked or stream slot stays until ``release``)."""
        self.answered = True
        if self.working:
            self.working = False
            self._limits.inflight -= 1

    def park(self) -> None:
        """Move from the work pool to the parked pool, before waiting for data."""
        if self.held is None:
            self._limits.parked.take(
                self.client, TooManyWaitersError, TooManyWaitersPerClientError,
                "parked long polls", "max_parked_requests",
            )
            self.held = "parked"
        if self.working:
            self.working = False
            self._limits.inflight -= 1

    def unpark(self) -> None:
        """Leave the parked pool once the wait is over (the answer is built outside any pool)."""
        if self.held == "parked":
            self.held = None
            self._limits.parked.give(self.client)
            self.answered = True  # no work slot again: the rest is rendering what was read

    def stream(self) -> None:
        """Move from the work pool to the streams pool, for the life of an event stream."""
        if self.held is None:
            self._limits.streams.take(
                self.client, TooManyStreamsError, TooManyStreamsPerClientError,
                "event streams", "max_sse_streams",
            )
            self.held = "streams"
        self.end_work()

    def release(self) -> None:
        self.end_work()
        if self.held == "parked":
            self._limits.parked.give(self.client)
        elif self.held == "streams":
            streams = self._limits.streams
            streams.give(self.client)
            if streams.total == 0:
                self._limits.on_streams_idle()
        self.held = None


def slot_of(scope: Mapping[str, Any]) -> RequestSlot:
    """The slot ``LimitsMiddleware`` gave this request (every API route runs behind it)."""
    slot: RequestSlot = scope["tidelog.slot"]
    return slot


@contextmanager
def parked(scope: Mapping[str, Any], max_wait_ms: int) -> Iterator[None]:
    """Around a long poll: its request waits in the parked pool, not the work pool (no-op when
    ``max_wait_ms`` is 0: the request answers at once and stays in the work pool)."""
    if max_wait_ms <= 0:
        yield
        return
    slot = slot_of(scope)
    slot.park()
    try:
        yield
    finally:
        slot.unpark()


async def until_stopping(stopping: asyncio.Event, wait: Awaitable[T]) -> T | None:
    """``wait``'s result, or None once the broker begins to stop (the wait is cancelled then).

    A parked long poll must not hold a SIGTERM for its whole ``max_wait_ms``: the caller answers
    at once with what is there instead, as when the wait runs out.
    """
    if stopping.is_set():
        close = getattr(wait, "close", None)
        if close is not None:
            close()  # a coroutine never awaited
        return None
    task = asyncio.ensure_future(wait)
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request was cancelled (client gone, shutdown): so is its wait
        task.cancel()
        stopper.cancel()
        raise
    stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
