"""``Client`` and ``AsyncClient``: the connection to a broker, retries, and every endpoint as a method.

One transport injection point (``transport=``, any ``httpx`` transport) serves tests and proxies.
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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx

from tidelog import _api
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
from tidelog._records import OutgoingRecord, check_format, encode_record
from tidelog._types import (
    FetchResult,
    PartitionOffsets,
    ProduceResult,
    TopicDescription,
)

if TYPE_CHECKING:
    from tidelog._admin import Admin, AsyncAdmin
    from tidelog._async_consumer import AsyncConsumer, AsyncPartitionReader
    from tidelog._consumer import Consumer, PartitionReader
    from tidelog._producer import AsyncProducer, Producer
    from tidelog._sse import GroupStream, TopicStream

__all__ = ["DEFAULT_URL", "AsyncClient", "Client", "RetryPolicy", "resolve_url"]

T = TypeVar("T")
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


def _translate(exc: httpx.HTTPError) -> TransportError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectError(f"cannot connect to the broker: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"no answer from the broker in time: {exc}")
    return TransportError(f"{type(exc).__name__}: {exc}")


def _decode(response: httpx.Response) -> Any:
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


def _origin(url: str) -> str:
    """``scheme://host:port`` of an absolute URL."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


@dataclass(slots=True)
class _Route:
    """Where one call's attempts go: its candidate bootstrap URLs and the broker last tried."""

    origins: list[str]
    index: int = 0
    tried: str = ""  # base URL of the broker the last request went to
    via_leader: bool = False  # ``tried`` came from the leader cache or a redirect

    @property
    def origin(self) -> str:
        return self.origins[self.index % len(self.origins)]


def _may_retry(error: TidelogError, call: _api.Call[Any]) -> bool:
    if isinstance(error, ConnectError):
        return True
    if isinstance(error, TransportError):
        return error.retriable and call.idempotent
    return error.retriable


class _Base:
    def __init__(
        self,
        url: str | None,
        timeout: float,
        retries: int,
        backoff_ms: int,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.url = resolve_url(url)
        self.timeout = timeout
        self.retry = RetryPolicy(retries=retries, backoff_ms=backoff_ms)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.leaders = LeaderCache()

    # -- where a request goes (module docstring) ---------------------------------------------------

    def _route(self) -> _Route:
        others = [u for u in self.leaders.alive_broker_urls() if u != self.url]
        return _Route([self.url, *others])

    def _first_url(self, call: _api.Call[Any], route: _Route) -> str:
        leader = self.leaders.leader_url(*call.partition_route) if call.partition_route else None
        route.via_leader = leader is not None
        route.tried = leader if leader is not None else route.origin
        return route.tried + call.path

    def _redirect(self, call: _api.Call[Any], response: httpx.Response, route: _Route) -> str | None:
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

    def _after_failure(self, call: _api.Call[Any], error: TidelogError, route: _Route) -> None:
        """Forget what the failure shows to be stale: an unreachable broker's leaderships, and the
        leader of a partition whose broker says it no longer leads it."""
        if isinstance(error, TransportError) and not isinstance(error, ProtocolError) and route.tried:
            self.leaders.forget_url(route.tried)
            if not route.via_leader and isinstance(error, ConnectError):
                route.index += 1  # the next attempt asks another broker
        if call.partition_route is not None and isinstance(error, NotLeaderError | TransportError):
            self.leaders.forget(*call.partition_route)

    def _timeout(self, call: _api.Call[Any], timeout: float | None) -> httpx.Timeout:
        total = (timeout if timeout is not None else self.timeout) + call.extra_timeout
        return httpx.Timeout(total, connect=min(total, 10.0))

    @staticmethod
    def _encode(
        records: Sequence[Any],
        key_format: str,
        value_format: str,
    ) -> tuple[list[OutgoingRecord], list[int | None]]:
        out: list[OutgoingRecord] = []
        partitions: list[int | None] = []
        for item in records:
            rec = item if isinstance(item, Mapping) else {"value": item}
            out.append(
                encode_record(
                    key=rec.get("key"),
                    value=rec.get("value"),
                    headers=rec.get("headers"),
                    timestamp=rec.get("timestamp"),
                    key_format=key_format,
                    value_format=value_format,
                )
            )
            part = rec.get("partition")
            partitions.append(part if isinstance(part, int) else None)
        return out, partitions


class Client(_Base):
    """A synchronous connection to a tidelog broker.

    >>> with Client("http://127.0.0.1:8080") as client:           # doctest: +SKIP
    ...     client.admin.create_topic("orders", partitions=3)
    ...     with client.producer() as producer:
    ...         producer.send("orders", {"id": 1}, key="customer-7").result()
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_ms: int = 100,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 32,
    ) -> None:
        super().__init__(url, timeout, retries, backoff_ms, headers)
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=self._headers,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._transport = transport
        self._admin: Admin | None = None

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (for streaming endpoints such as SSE)."""
        return self._http

    def call(self, call: _api.Call[T], *, timeout: float | None = None, retries: int | None = None) -> T:
        """Send ``call``, retrying as the module docstring says; return its parsed answer."""
        attempts = 1 + (self.retry.retries if retries is None else retries)
        attempt = 0
        route = self._route()
        while True:
            attempt += 1
            try:
                return call.parse(_decode(self._send(call, timeout, route)))
            except TidelogError as error:
                self._after_failure(call, error, route)
                if attempt >= attempts or not _may_retry(error, call):
                    raise
                time.sleep(self.retry.delay(attempt, getattr(error, "retry_after", None)))

    def _send(self, call: _api.Call[Any], timeout: float | None, route: _Route) -> httpx.Response:
        """One attempt: to the leader or the route's broker, following redirects to the leader."""
        url = self._first_url(call, route)
        params: dict[str, Any] | None = call.params or None
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._http.request(
                    call.method,
                    url,
                    params=params,
                    json=call.json,
                    headers=call.headers or None,
                    timeout=self._timeout(call, timeout),
                    follow_redirects=False,
                )
            except httpx.HTTPError as exc:
                raise _translate(exc) from exc
            location = self._redirect(call, response, route)
            if location is None:
                return response
            url, params = location, None  # the Location carries the query
        return response  # still a redirect: read as a retriable NotLeaderError

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the pieces built on the connection -----------------------------------------------------

    @property
    def admin(self) -> Admin:
        """Topic, config, group and offset administration."""
        if self._admin is None:
            from tidelog._admin import Admin

            self._admin = Admin(self)
        return self._admin

    def producer(self, **options: Any) -> Producer:
        """Return a new ``Producer`` on this connection (options as ``Producer``'s)."""
        from tidelog._producer import Producer

        return Producer(self, **options)

    def consumer(self, group_id: str, topics: Sequence[str] | None = None, **options: Any) -> Consumer:
        """Return a new group ``Consumer`` (joins on first use; options as ``Consumer``'s)."""
        from tidelog._consumer import Consumer

        return Consumer(self, group_id, topics, **options)

    def reader(
        self, topic: str, partition: int = 0, offset: int | str = "earliest", **options: Any
    ) -> PartitionReader:
        """Return a ``PartitionReader`` of one partition, starting at ``offset`` (or earliest/latest)."""
        from tidelog._consumer import PartitionReader

        return PartitionReader(self, topic, partition, offset, **options)

    def stream(self, topic: str, **options: Any) -> TopicStream:
        """Return an SSE ``TopicStream`` of ``topic`` that resumes by cursor after a disconnect."""
        from tidelog._sse import TopicStream

        return TopicStream(self, topic, **options)

    def group_stream(self, group_id: str, topics: Sequence[str], **options: Any) -> GroupStream:
        """Return an SSE ``GroupStream``: a group member for as long as the connection lasts."""
        from tidelog._sse import GroupStream

        return GroupStream(self, group_id, topics, **options)

    # -- records --------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        records: Sequence[Any],
        *,
        partition: int | None = None,
        acks: int | str = "all",
        key_format: str = "string",
        value_format: str = "json",
        idempotency_key: str | None = None,
    ) -> ProduceResult:
        """Produce one request of records and return per record its metadata or error.

        ``records`` are values, or mappings with ``value``, ``key``, ``headers``, ``timestamp`` and
        ``partition``. Without ``partition`` the broker partitions by key. For batching, background
        sending and idempotence use ``producer()``.
        """
        out, parts = self._encode(
            records, check_format(key_format, "key_format"), check_format(value_format, "value_format")
        )
        return self.call(
            _api.produce(
                topic,
                out,
                partition=partition,
                acks=_api.normalize_acks(acks),
                key_format=key_format,
                value_format=value_format,
                idempotency_key=idempotency_key,
                record_partitions=parts if partition is None else None,
            )
        )

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        max_wait_ms: int | None = None,
        min_bytes: int | None = None,
        key_format: str | None = None,
        value_format: str | None = None,
        header_format: str | None = None,
    ) -> FetchResult:
        """Fetch records of one partition from ``offset`` (long-polls up to ``max_wait_ms``)."""
        return self.call(
            _api.fetch(
                topic,
                partition,
                offset,
                max_records=max_records,
                max_bytes=max_bytes,
                max_wait_ms=max_wait_ms,
                min_bytes=min_bytes,
                key_format=key_format,
                value_format=value_format,
                header_format=header_format,
            )
        )

    def offsets(self, topic: str, partition: int, *, timestamp: int | None = None) -> PartitionOffsets:
        """Return a partition's log start, high watermark and log end (and the offset for ``timestamp``)."""
        return self.call(_api.partition_offsets(topic, partition, timestamp))

    def cluster(self) -> dict[str, Any]:
        """Return the broker's ``/v1/cluster`` answer: the answering broker's id, URL and version,
        the controller, every broker with its URL and state (alive or fenced), and the
        under-replicated partitions. Also refreshes the brokers' URLs in ``leaders``."""
        answer = self.call(_api.cluster())
        self.leaders.update_brokers(answer)
        return answer

    def refresh_metadata(self, topic: str) -> TopicDescription:
        """Describe ``topic`` and remember each partition's leader (with the brokers' URLs from
        ``/v1/cluster``), so that its produce and fetch requests go straight to the leaders."""
        description = self.admin.describe_topic(topic)
        # Without the brokers' URLs the leaders cannot be cached; redirects still find them.
        with contextlib.suppress(TidelogError):
            self.cluster()
        self.leaders.update_topic(topic, [(p.partition, p.leader) for p in description.partitions])
        return description

    def ensure_leader(self, topic: str, partition: int) -> None:
        """Load the partition's leader from topic metadata unless it is known already.

        Readers call it once: a follower's high watermark lags its leader's, so reading through a
        follower can miss what was just acknowledged (Kafka consumers, too, read from leaders). An
        error here is left to the read itself to report.
        """
        if self.leaders.leader_url(topic, partition) is None:
            with contextlib.suppress(TidelogError):
                self.refresh_metadata(topic)


class AsyncClient(_Base):
    """An asyncio connection to a tidelog broker; the same methods as ``Client``, awaited.

    >>> async with AsyncClient() as client:                       # doctest: +SKIP
    ...     async with client.producer() as producer:
    ...         meta = await (await producer.send("orders", {"id": 1}))
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_ms: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 32,
    ) -> None:
        super().__init__(url, timeout, retries, backoff_ms, headers)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers=self._headers,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._admin: AsyncAdmin | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def call(
        self, call: _api.Call[T], *, timeout: float | None = None, retries: int | None = None
    ) -> T:
        """Send ``call``, retrying as the module docstring says; return its parsed answer."""
        attempts = 1 + (self.retry.retries if retries is None else retries)
        attempt = 0
        route = self._route()
        while True:
            attempt += 1
            try:
                return call.parse(_decode(await self._send(call, timeout, route)))
            except TidelogError as error:
                self._after_failure(call, error, route)
                if attempt >= attempts or not _may_retry(error, call):
                    raise
                await asyncio.sleep(self.retry.delay(attempt, getattr(error, "retry_after", None)))

    async def _send(self, call: _api.Call[Any], timeout: float | None, route: _Route) -> httpx.Response:
        """One attempt (see ``Client._send``)."""
        url = self._first_url(call, route)
        params: dict[str, Any] | None = call.params or None
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._http.request(
                    call.method,
                    url,
                    params=params,
                    json=call.json,
                    headers=call.headers or None,
                    timeout=self._timeout(call, timeout),
                    follow_redirects=False,
                )
            except httpx.HTTPError as exc:
                raise _translate(exc) from exc
            location = self._redirect(call, response, route)
            if location is None:
                return response
            url, params = location, None
        return response

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def admin(self) -> AsyncAdmin:
        if self._admin is None:
            from tidelog._admin import AsyncAdmin

            self._admin = AsyncAdmin(self)
        return self._admin

    def producer(self, **options: Any) -> AsyncProducer:
        """Return a new ``AsyncProducer`` (its sender task starts on first ``send``)."""
        from tidelog._producer import AsyncProducer

        return AsyncProducer(self, **options)

    def consumer(self, group_id: str, topics: Sequence[str] | None = None, **options: Any) -> AsyncConsumer:
        """Return a new group ``AsyncConsumer`` (joins on first ``poll``; options as ``Consumer``'s)."""
        from tidelog._async_consumer import AsyncConsumer

        return AsyncConsumer(self, group_id, topics, **options)

    def reader(
        self, topic: str, partition: int = 0, offset: int | str = "earliest", **options: Any
    ) -> AsyncPartitionReader:
        """Return an ``AsyncPartitionReader`` of one partition (see ``Client.reader``)."""
        from tidelog._async_consumer import AsyncPartitionReader

        return AsyncPartitionReader(self, topic, partition, offset, **options)

    def stream(self, topic: str, **options: Any) -> TopicStream:
        """Return an SSE ``TopicStream`` to iterate with ``async for`` (see ``Client.stream``)."""
        from tidelog._sse import TopicStream

        return TopicStream(self, topic, **options)

    def group_stream(self, group_id: str, topics: Sequence[str], **options: Any) -> GroupStream:
        """Return an SSE ``GroupStream`` to iterate with ``async for`` (see ``Client.group_stream``)."""
        from tidelog._sse import GroupStream

        return GroupStream(self, group_id, topics, **options)

    async def produce(
        self,
        topic: str,
        records: Sequence[Any],
        *,
        partition: int | None = None,
        acks: int | str = "all",
        key_format: str = "string",
        value_format: str = "json",
        idempotency_key: str | None = None,
    ) -> ProduceResult:
        """Produce one request of records (see ``Client.produce``)."""
        out, parts = self._encode(
            records, check_format(key_format, "key_format"), check_format(value_format, "value_format")
        )
        return await self.call(
            _api.produce(
                topic,
                out,
                partition=partition,
                acks=_api.normalize_acks(acks),
                key_format=key_format,
                value_format=value_format,
                idempotency_key=idempotency_key,
                record_partitions=parts if partition is None else None,
            )
        )

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        max_wait_ms: int | None = None,
        min_bytes: int | None = None,
        key_format: str | None = None,
        value_format: str | None = None,
        header_format: str | None = None,
    ) -> FetchResult:
        """Fetch records of one partition from ``offset`` (see ``Client.fetch``)."""
        return await self.call(
            _api.fetch(
                topic,
                partition,
                offset,
                max_records=max_records,
                max_bytes=max_bytes,
                max_wait_ms=max_wait_ms,
                min_bytes=min_bytes,
                key_format=key_format,
                value_format=value_format,
                header_format=header_format,
            )
        )

    async def offsets(self, topic: str, partition: int, *, timestamp: int | None = None) -> PartitionOffsets:
        return await self.call(_api.partition_offsets(topic, partition, timestamp))

    async def cluster(self) -> dict[str, Any]:
        """Return the broker's ``/v1/cluster`` answer (see ``Client.cluster``)."""
        answer = await self.call(_api.cluster())
        self.leaders.update_brokers(answer)
        return answer

    async def refresh_metadata(self, topic: str) -> TopicDescription:
        """Describe ``topic`` and remember its partitions' leaders (see ``Client.refresh_metadata``)."""
        description = await self.admin.describe_topic(topic)
        with contextlib.suppress(TidelogError):
            await self.cluster()
        self.leaders.update_topic(topic, [(p.partition, p.leader) for p in description.partitions])
        return description

    async def ensure_leader(self, topic: str, partition: int) -> None:
        """Load the partition's leader unless known (see ``Client.ensure_leader``)."""
        if self.leaders.leader_url(topic, partition) is None:
            with contextlib.suppress(TidelogError):
                await self.refresh_metadata(topic)
