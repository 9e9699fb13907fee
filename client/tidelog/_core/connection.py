"""One call's life, decided without I/O: where it goes, what the answer means, whether to try again.

Retries: an answer whose error is ``retriable`` (429, 503, 40904) is retried after its
``Retry-After`` or an exponential backoff with jitter; a lost answer (timeout, dropped connection)
is retried only for requests that are safe to repeat (reads, and writes the broker de-duplicates);
a connection that could not be opened is always retried, as nothing was sent.

Clustered mode (docs/cluster.md): a request for one partition (produce to a partition, fetch,
offsets) goes to the partition's leader when the client's ``LeaderCache`` knows it, else to the
client's URL. A ``307`` to the leader (error_code 50304 in the body) is followed at once, up to
``MAX_REDIRECTS`` hops, with the same method, query and body, and the leader is remembered; httpx's
own redirect following is off, so no other request is ever redirected. A leader that cannot be
reached or answers 50304 itself is forgotten, and the retry goes to the client's URL again, which
redirects to the new leader. When the client's own broker cannot be reached, a retry goes to the
next broker ``/v1/cluster`` listed as alive (Kafka's bootstrap servers), since any broker answers
any request.

``CallState`` is the loop's whole state: the shells ask it for the next URL, hand it each answer or
error, and sleep for the delay it returns (``time.sleep`` or ``asyncio.sleep``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tidelog._api import Call
from tidelog._errors import (
    ConnectError,
    NotLeaderError,
    ProtocolError,
    TidelogError,
    TimeoutError,
    TransportError,
    error_from_response,
)
from tidelog._leaders import LeaderCache

__all__ = [
    "DEFAULT_URL",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "CallState",
    "RetryPolicy",
    "Router",
    "answer_of",
    "decode_answer",
    "may_retry",
    "resolve_url",
    "translate_error",
]

DEFAULT_URL = "http://127.0.0.1:8080"
USER_AGENT = "tidelog-python"
#: Redirects followed within one attempt: brokers whose views of a just-moved leader disagree can
#: bounce a request between them for a moment; then it is a retriable NotLeaderError.
MAX_REDIRECTS = 3


def resolve_url(url: str | None) -> str:
    """Return ``url``, else ``$TIDELOG_URL``, else the default local broker, without a trailing slash."""
    chosen = url or os.environ.get("TIDELOG_URL") or DEFAULT_URL
    if "://" not in chosen:
        chosen = "http://" + chosen
    return chosen.rstrip("/")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before sending a request again (Kafka's retries/retry.backoff.ms)."""

    retries: int = 5
    backoff_ms: int = 100
    backoff_max_ms: int = 5_000

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return float(min(retry_after, self.backoff_max_ms / 1000.0 * 4))
        base = min(self.backoff_ms * (1 << min(attempt - 1, 20)), self.backoff_max_ms) / 1000.0
        return base * (0.8 + 0.4 * random.random())


def translate_error(exc: httpx.HTTPError) -> TransportError:
    """The client's exception for an httpx failure: nothing sent, no answer in time, or another."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectError(f"cannot connect to the broker: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"no answer from the broker in time: {exc}")
    return TransportError(f"{type(exc).__name__}: {exc}")


def decode_answer(response: httpx.Response) -> Any:
    """Return a success's JSON body (None for 204/empty); raise the error class of an error answer."""
    if response.status_code == 204 or not response.content:
        if response.is_success:
            return None
        raise error_from_response(response.status_code, None, response.headers.get("Retry-After"))
    try:
        body = response.json()
    except ValueError:
        if response.is_success:
            raise ProtocolError(
                f"{response.request.method} {response.request.url.path}: answer is not JSON"
            ) from None
        body = {"detail": response.text[:500]}
    if response.is_success:
        return body
    raise error_from_response(response.status_code, body, response.headers.get("Retry-After"))


def answer_of(call: Call[Any], response: httpx.Response) -> Any:
    """What ``call.parse`` takes: the response itself for a raw call's success, else its JSON body."""
    if call.raw and response.is_success:
        return response
    return decode_answer(response)


def may_retry(error: TidelogError, call: Call[Any]) -> bool:
    """Whether ``call`` may be sent again after ``error`` (the module docstring's rules)."""
    if isinstance(error, ConnectError):
        return True
    if isinstance(error, TransportError):
        return error.retriable and call.idempotent
    return error.retriable


def _origin(url: str) -> str:
    """``scheme://host:port`` of an absolute URL."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


@dataclass(slots=True)
class Route:
    """Where one call's attempts go: its candidate bootstrap URLs and the broker last tried."""

    origins: list[str]
    index: int = 0
    tried: str = ""  # base URL of the broker the last request went to
    via_leader: bool = False  # ``tried`` came from the leader cache or a redirect

    @property
    def origin(self) -> str:
        return self.origins[self.index % len(self.origins)]


class Router:
    """Leader routing over a ``LeaderCache``: the first URL of an attempt, redirects, what to forget."""

    def __init__(self, url: str, leaders: LeaderCache) -> None:
        self.url = url
        self.leaders = leaders

    def route(self) -> Route:
        others = [u for u in self.leaders.alive_broker_urls() if u != self.url]
        return Route([self.url, *others])

    def first_url(self, call: Call[Any], route: Route) -> str:
        leader = self.leaders.leader_url(*call.partition_route) if call.partition_route else None
        route.via_leader = leader is not None
        route.tried = leader if leader is not None else route.origin
        return route.tried + call.path

    def redirect(self, call: Call[Any], response: httpx.Response, route: Route) -> str | None:
        """Return where to send ``call`` again if ``response`` is a redirect to follow, learning the
        leader it names; None to read ``response`` as the answer."""
        if call.partition_route is None or response.status_code not in (307, 308):
            return None
        location = response.headers.get("Location")
        if not location or not location.startswith(("http://", "https://")):
            return None
        named: Any = None
        leader_id: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            named, leader_id = body.get("leader_url"), body.get("leader_id")
        leader_url = named.rstrip("/") if isinstance(named, str) and named else _origin(location)
        if not location.startswith(leader_url):
            leader_url = _origin(location)
        self.leaders.learn(
            *call.partition_route, leader_url, leader_id if isinstance(leader_id, int) else None
        )
        route.tried, route.via_leader = leader_url, True
        return str(location)

    def after_failure(self, call: Call[Any], error: TidelogError, route: Route) -> None:
        """Forget what the failure shows to be stale: an unreachable broker's leaderships, and the
        leader of a partition whose broker says it no longer leads it."""
        if isinstance(error, TransportError) and not isinstance(error, ProtocolError) and route.tried:
            self.leaders.forget_url(route.tried)
            if not route.via_leader and isinstance(error, ConnectError):
                route.index += 1  # the next attempt asks another broker
        if call.partition_route is not None and isinstance(error, NotLeaderError | TransportError):
            self.leaders.forget(*call.partition_route)


@dataclass(slots=True)
class CallState:
    """One call's retry loop as data: the route of its attempts and how many are left."""

    call: Call[Any]
    router: Router
    policy: RetryPolicy
    attempts: int
    route: Route = field(init=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        self.route = self.router.route()

    def next_url(self) -> str:
        """Start an attempt; return the URL it goes to first."""
        self.attempt += 1
        return self.router.first_url(self.call, self.route)

    def redirect(self, response: httpx.Response) -> str | None:
        """Where the attempt goes next if ``response`` is a redirect to the partition's leader."""
        return self.router.redirect(self.call, response, self.route)

    def failed(self, error: TidelogError) -> float | None:
        """Record a failed attempt; return the seconds to wait before the next, or None to give up."""
        self.router.after_failure(self.call, error, self.route)
        if self.attempt >= self.attempts or not may_retry(error, self.call):
            return None
        return self.policy.delay(self.attempt, getattr(error, "retry_after", None))


def timeout_for(call: Call[Any], default: float, timeout: float | None) -> httpx.Timeout:
    """The httpx timeout of one request of ``call``: the client's (or the caller's) plus its long-poll."""
    total = (timeout if timeout is not None else default) + call.extra_timeout
    return httpx.Timeout(total, connect=min(total, 10.0))
