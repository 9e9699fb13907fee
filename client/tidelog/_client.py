"""``Client`` and ``AsyncClient``: the connection to a broker, and every endpoint as a method.

Both are thin shells over the sans-I/O core: ``tidelog._api`` builds each request as a ``Call``,
``tidelog._core.connection`` decides where each attempt goes (leader routing, redirects to the
leader, the next bootstrap broker), what the answer means and whether and when to try again (its
docstring states the rules); ``tidelog._core.credentials`` resolves what to authenticate with. The
shells only send and sleep, with ``httpx.Client`` and ``time.sleep`` or ``httpx.AsyncClient`` and
``asyncio.sleep``. One transport injection point (``transport=``, any ``httpx`` transport) serves
tests and proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx

from tidelog import _api
from tidelog._core.connection import (
    DEFAULT_URL,
    MAX_REDIRECTS,
    CallState,
    RetryPolicy,
    answer_of,
    resolve_url,
    translate_error,
)
from tidelog._core.session import ClientBase as _Base
from tidelog._errors import ResourceNotFoundError, TidelogError
from tidelog._types import (
    FetchResult,
    PartitionOffsets,
    ProduceResult,
    TopicDescription,
    TopicPartition,
)

if TYPE_CHECKING:
    from tidelog._admin import Admin, AsyncAdmin
    from tidelog._async_consumer import AsyncConsumer, AsyncPartitionReader
    from tidelog._consumer import Consumer, PartitionReader
    from tidelog._producer import AsyncProducer, Producer
    from tidelog._sse import GroupStream, TopicStream

__all__ = ["DEFAULT_URL", "MAX_REDIRECTS", "AsyncClient", "Client", "RetryPolicy", "resolve_url"]

T = TypeVar("T")


class Client(_Base):
    """A synchronous connection to a tidelog broker.

    Credentials (one kind at most; ``tidelog._core.credentials``): ``api_key=`` (default
    ``$TIDELOG_API_KEY``) or ``bearer_token=`` (``token=``) sent as ``Authorization: Bearer``, HTTP
    Basic with ``basic=(username, password)`` (or ``username=`` and ``password=``), or any
    ``httpx.Auth`` as ``auth=``. They go with every request,
    to every broker the client is routed to, and with its SSE streams.

    ``batch_format`` (default on): producers and partition reads use the binary batch format
    (``application/vnd.tidelog.batch``, docs/records.md), falling back to JSON for good as soon as a
    broker answers 415 or 406 for it.

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
        api_key: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        batch_format: bool = True,
        basic: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        super().__init__(
            url, timeout, retries, backoff_ms, headers,
            api_key=api_key, token=token, username=username, password=password, auth=auth,
            batch_format=batch_format,
            basic=basic, bearer_token=bearer_token,
        )  # fmt: skip
        self._http = httpx.Client(transport=transport, **self._http_options(max_connections))
        self._transport = transport
        self._admin: Admin | None = None

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (for streaming endpoints such as SSE)."""
        return self._http

    def call(self, call: _api.Call[T], *, timeout: float | None = None, retries: int | None = None) -> T:
        """Send ``call``, retrying as ``tidelog._core.connection`` says; return its parsed answer."""
        state = self._call_state(call, retries)
        while True:
            try:
                return call.parse(answer_of(call, self._send(state, timeout)))
            except TidelogError as error:
                delay = state.failed(error)
                if delay is None:
                    raise
                time.sleep(delay)

    def _send(self, state: CallState, timeout: float | None) -> httpx.Response:
        """One attempt: to the leader or the route's broker, following redirects to the leader."""
        call = state.call
        url = state.next_url()
        params: dict[str, Any] | None = call.params or None
        options = self._request_options(call, timeout)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._http.request(call.method, url, params=params, **options)
            except httpx.HTTPError as exc:
                raise translate_error(exc) from exc
            location = state.redirect(response)
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
        return self.call(
            self._produce_call(topic, records, partition, acks, key_format, value_format, idempotency_key)
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
        options: dict[str, Any] = {
            "max_records": max_records,
            "max_bytes": max_bytes,
            "max_wait_ms": max_wait_ms,
            "min_bytes": min_bytes,
            "key_format": key_format,
            "value_format": value_format,
            "header_format": header_format,
        }
        call = self._fetch_call(topic, partition, offset, **options)
        try:
            return self.call(call)
        except TidelogError as error:
            if not self._format_refused(call, error):
                raise
        return self.call(self._fetch_call(topic, partition, offset, **options))

    def fetch_many(
        self,
        offsets: Mapping[TopicPartition | tuple[str, int], int],
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        partition_max_bytes: int | None = None,
        max_wait_ms: int | None = None,
        min_bytes: int | None = None,
    ) -> dict[TopicPartition, FetchResult | Exception]:
        """Fetch many partitions from their offsets: one ``POST /v1/fetch`` per broker (each for the
        partitions it leads, concurrently), answering once ``min_bytes`` are there or ``max_wait_ms``
        ends. Each partition maps to its ``FetchResult`` or its own error; a partition whose leader
        moved is asked again at the leader its error names."""
        wanted = {TopicPartition(*tp): offset for tp, offset in offsets.items()}
        options = {
            "max_records": max_records,
            "max_bytes": max_bytes,
            "partition_max_bytes": partition_max_bytes,
            "max_wait_ms": max_wait_ms,
            "min_bytes": min_bytes,
        }
        results: dict[TopicPartition, FetchResult | Exception] = {}
        for _ in range(2):
            calls = self._fetch_many_calls(wanted, options)
            try:
                if len(calls) == 1:
                    answers = [self.call(calls[0])]
                else:
                    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                        answers = list(pool.map(self.call, calls))
            except ResourceNotFoundError:
                # A broker without POST /v1/fetch: one fetch per partition, as before it.
                return {tp: self._fetch_one(tp, offset, options) for tp, offset in wanted.items()}
            for answer in answers:
                results.update(answer)
            wanted = self._fetch_many_retry(results, wanted)
            if not wanted:
                break
            options["max_wait_ms"] = 0
        return results

    def _fetch_one(
        self, tp: TopicPartition, offset: int, options: Mapping[str, Any]
    ) -> FetchResult | Exception:
        try:
            return self.fetch(
                tp.topic,
                tp.partition,
                offset,
                max_records=options["max_records"],
                max_bytes=options["partition_max_bytes"],
                max_wait_ms=0,
                min_bytes=options["min_bytes"],
            )
        except TidelogError as error:
            return error

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
    """An asyncio connection to a tidelog broker; the same methods (and credentials) as ``Client``, awaited.

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
        api_key: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        batch_format: bool = True,
        basic: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        super().__init__(
            url, timeout, retries, backoff_ms, headers,
            api_key=api_key, token=token, username=username, password=password, auth=auth,
            batch_format=batch_format,
            basic=basic, bearer_token=bearer_token,
        )  # fmt: skip
        self._http = httpx.AsyncClient(transport=transport, **self._http_options(max_connections))
        self._admin: AsyncAdmin | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def call(
        self, call: _api.Call[T], *, timeout: float | None = None, retries: int | None = None
    ) -> T:
        """Send ``call``, retrying as ``tidelog._core.connection`` says; return its parsed answer."""
        state = self._call_state(call, retries)
        while True:
            try:
                return call.parse(answer_of(call, await self._send(state, timeout)))
            except TidelogError as error:
                delay = state.failed(error)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _send(self, state: CallState, timeout: float | None) -> httpx.Response:
        """One attempt (see ``Client._send``)."""
        call = state.call
        url = state.next_url()
        params: dict[str, Any] | None = call.params or None
        options = self._request_options(call, timeout)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._http.request(call.method, url, params=params, **options)
            except httpx.HTTPError as exc:
                raise translate_error(exc) from exc
            location = state.redirect(response)
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
        return await self.call(
            self._produce_call(topic, records, partition, acks, key_format, value_format, idempotency_key)
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
        options: dict[str, Any] = {
            "max_records": max_records,
            "max_bytes": max_bytes,
            "max_wait_ms": max_wait_ms,
            "min_bytes": min_bytes,
            "key_format": key_format,
            "value_format": value_format,
            "header_format": header_format,
        }
        call = self._fetch_call(topic, partition, offset, **options)
        try:
            return await self.call(call)
        except TidelogError as error:
            if not self._format_refused(call, error):
                raise
        return await self.call(self._fetch_call(topic, partition, offset, **options))

    async def fetch_many(
        self,
        offsets: Mapping[TopicPartition | tuple[str, int], int],
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        partition_max_bytes: int | None = None,
        max_wait_ms: int | None = None,
        min_bytes: int | None = None,
    ) -> dict[TopicPartition, FetchResult | Exception]:
        """Fetch many partitions from their offsets (see ``Client.fetch_many``)."""
        wanted = {TopicPartition(*tp): offset for tp, offset in offsets.items()}
        options = {
            "max_records": max_records,
            "max_bytes": max_bytes,
            "partition_max_bytes": partition_max_bytes,
            "max_wait_ms": max_wait_ms,
            "min_bytes": min_bytes,
        }
        results: dict[TopicPartition, FetchResult | Exception] = {}
        for _ in range(2):
            calls = self._fetch_many_calls(wanted, options)
            try:
                answers = await asyncio.gather(*(self.call(c) for c in calls))
            except ResourceNotFoundError:
                # A broker without POST /v1/fetch: one fetch per partition, as before it.
                return {tp: await self._fetch_one(tp, offset, options) for tp, offset in wanted.items()}
            for answer in answers:
                results.update(answer)
            wanted = self._fetch_many_retry(results, wanted)
            if not wanted:
                break
            options["max_wait_ms"] = 0
        return results

    async def _fetch_one(
        self, tp: TopicPartition, offset: int, options: Mapping[str, Any]
    ) -> FetchResult | Exception:
        try:
            return await self.fetch(
                tp.topic,
                tp.partition,
                offset,
                max_records=options["max_records"],
                max_bytes=options["partition_max_bytes"],
                max_wait_ms=0,
                min_bytes=options["min_bytes"],
            )
        except TidelogError as error:
            return error

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
