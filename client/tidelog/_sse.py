"""Server-Sent Event streams: a topic's records (``TopicStream``) and a group member's (``GroupStream``).

Each ``record`` event carries an ``id:``, a cursor that holds the next offset of every partition of
the stream. The stream remembers the last one and, when the connection drops (a broker restart, a
proxy's idle timeout), connects again with ``Last-Event-ID`` so delivery continues right after the
last record handed out: no gap, no duplicate. For a group stream the broker also commits the offsets
in that cursor, so reconnecting is what acknowledges the records (at-least-once).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
from httpx_sse import EventSource, ServerSentEvent

from tidelog._api import _seg
from tidelog._core.connection import decode_answer as _decode
from tidelog._core.connection import translate_error as _translate
from tidelog._core.stream import StreamOption, StreamState
from tidelog._errors import BrokerError, TidelogError
from tidelog._types import Record, TopicPartition, parse_assignment

if TYPE_CHECKING:
    from tidelog._client import AsyncClient, Client

__all__ = ["GroupStream", "TopicStream"]



class _Stream:
    """The connection loops, sync and async, over one ``StreamState`` (``tidelog._core.stream``)."""

    def __init__(
        self,
        client: Client | AsyncClient,
        path: str,
        params: dict[str, Any],
        *,
        cursor: str | None,
        reconnect: bool,
        max_reconnects: int,
        read_timeout: float,
        key_format: str | None,
        value_format: str | None,
        max_records: int | None,
    ) -> None:
        self._client = client
        self._state = StreamState(
            path,
            params,
            cursor=cursor,
            reconnect=reconnect,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            key_format=key_format,
            value_format=value_format,
            max_records=max_records,
        )
        self._closed = threading.Event()
        self._response: httpx.Response | None = None

    cursor: StreamOption[str | None] = StreamOption()
    reconnect: StreamOption[bool] = StreamOption()
    max_reconnects: StreamOption[int] = StreamOption()
    read_timeout: StreamOption[float] = StreamOption()
    key_format: StreamOption[str | None] = StreamOption()
    value_format: StreamOption[str | None] = StreamOption()
    max_records: StreamOption[int | None] = StreamOption()
    connections: StreamOption[int] = StreamOption()

    def _request(self, client: Client | AsyncClient) -> dict[str, Any]:
        state = self._state
        return {
            "params": state.params,
            "headers": state.headers(),
            "timeout": httpx.Timeout(client.timeout, read=state.read_timeout),
        }

    async def _aevents(self) -> AsyncIterator[ServerSentEvent]:
        import asyncio

        from tidelog._client import AsyncClient

        client = self._client
        if not isinstance(client, AsyncClient):
            raise TypeError("iterate a stream of a Client with `for`, of an AsyncClient with `async for`")
        state, failures = self._state, 0
        while not self._closed.is_set():
            got_event = False
            try:
                async with client.http.stream("GET", state.path, **self._request(client)) as response:
                    if not response.is_success:
                        await response.aread()
                        _decode(response)
                    state.connections += 1
                    self._on_connect()
                    async for event in EventSource(response).aiter_sse():
                        got_event, failures = True, 0
                        state.heard(event)
                        yield event
                        if self._closed.is_set():
                            return
            except httpx.HTTPError as exc:
                if self._closed.is_set():
                    return
                error: TidelogError = _translate(exc)
            except BrokerError as exc:
                if not exc.retriable:
                    raise
                error = exc
            else:
                if self._closed.is_set():
                    return
                error = state.ended()
            again, failures = state.after_failure(error, got_event, failures)
            if not again:
                return
            await asyncio.sleep(state.backoff(failures))

    async def __aiter__(self) -> AsyncIterator[Record]:
        async for event in self._aevents():
            record = self._record(event)
            if record is None:
                continue
            yield record
            if self._state.handed_out():
                return

    def _events(self) -> Iterator[ServerSentEvent]:
        from tidelog._client import Client

        client = self._client
        if not isinstance(client, Client):
            raise TypeError("iterate a stream of a Client with `for`, of an AsyncClient with `async for`")
        state, failures = self._state, 0
        while not self._closed.is_set():
            got_event = False
            try:
                with client.http.stream("GET", state.path, **self._request(client)) as response:
                    if not response.is_success:
                        response.read()
                        _decode(response)  # raises the broker's error
                    self._response = response
                    state.connections += 1
                    self._on_connect()
                    for event in EventSource(response).iter_sse():
                        got_event, failures = True, 0
                        state.heard(event)
                        yield event
                        if self._closed.is_set():
                            return
            except httpx.HTTPError as exc:
                if self._closed.is_set():
                    return
                error: TidelogError = _translate(exc)
            except BrokerError as exc:
                if not exc.retriable:
                    raise
                error = exc
            else:
                if self._closed.is_set():
                    return
                error = state.ended()
            finally:
                self._response = None
            again, failures = state.after_failure(error, got_event, failures)
            if not again:
                return
            if self._closed.wait(state.backoff(failures)):
                return

    def _on_connect(self) -> None:
        """Called after each (re)connection, before its first event."""

    def _record(self, event: ServerSentEvent) -> Record | None:
        record = self._state.record(event)
        if record is None:
            self._other(event)
        return record

    def _other(self, event: ServerSentEvent) -> None:
        """Handle a non-record event (group streams track membership)."""

    def __iter__(self) -> Iterator[Record]:
        for event in self._events():
            record = self._record(event)
            if record is None:
                continue
            yield record
            if self._state.handed_out():
                return

    def close(self) -> None:
        """Stop the stream; safe to call from another thread while it is being iterated."""
        self._closed.set()
        response = self._response
        if response is not None:
            response.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TopicStream(_Stream):
    """Records of a topic as Server-Sent Events, resuming from ``cursor`` after any disconnect.

    ``start`` is ``"earliest"``, ``"latest"`` or ``"timestamp:<ms>"``; ``cursor`` (a previous
    stream's ``.cursor``) resumes exactly where that stream stopped.

    >>> for record in client.stream("orders", start="earliest", max_records=10):   # doctest: +SKIP
    ...     print(record.partition, record.offset, record.value)
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        start: str = "latest",
        cursor: str | None = None,
        reconnect: bool = True,
        max_reconnects: int = 30,
        read_timeout: float = 60.0,
        key_format: str | None = None,
        value_format: str | None = None,
        max_records: int | None = None,
    ) -> None:
        params: dict[str, Any] = {"from": start}
        if partitions is not None:
            params["partitions"] = ",".join(str(p) for p in partitions)
        if key_format is not None:
            params["key_format"] = key_format
        if value_format is not None:
            params["value_format"] = value_format
        super().__init__(
            client,
            f"/v1/topics/{_seg(topic)}/events",
            params,
            cursor=cursor,
            reconnect=reconnect,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            key_format=key_format,
            value_format=value_format,
            max_records=max_records,
        )
        self.topic = topic


class GroupStream(_Stream):
    """A group member over one SSE connection: joins on connect, leaves on disconnect.

    ``member_id``, ``generation`` and ``assignment`` follow the ``member`` and ``assignment``
    events. A reconnection sends the cursor of the last record handed out, which the broker commits.
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        group_id: str,
        topics: Sequence[str],
        *,
        cursor: str | None = None,
        reconnect: bool = True,
        max_reconnects: int = 30,
        read_timeout: float = 60.0,
        key_format: str | None = None,
        value_format: str | None = None,
        max_records: int | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> None:
        params: dict[str, Any] = {**({"topics": ",".join(topics)} if topics else {}), **(extra_params or {})}
        super().__init__(
            client,
            f"/v1/groups/{_seg(group_id)}/events",
            params,
            cursor=cursor,
            reconnect=reconnect,
            max_reconnects=max_reconnects,
            read_timeout=read_timeout,
            key_format=key_format,
            value_format=value_format,
            max_records=max_records,
        )
        self.group_id = group_id
        self.member_id: str | None = None
        self.generation: int | None = None
        self.assignment: tuple[TopicPartition, ...] = ()
        self.assignment_changes = 0
        self.last_event_at = time.monotonic()

    def _other(self, event: ServerSentEvent) -> None:
        self.last_event_at = time.monotonic()
        try:
            data = json.loads(event.data) if event.data else {}
        except ValueError:
            return
        if not isinstance(data, Mapping):
            return
        if event.event == "member":
            member_id, generation = data.get("member_id"), data.get("generation")
            self.member_id = member_id if isinstance(member_id, str) else None
            self.generation = generation if isinstance(generation, int) else None
        elif event.event == "assignment":
            generation = data.get("generation")
            if isinstance(generation, int):
                self.generation = generation
            self.assignment = parse_assignment(data.get("assignment"))
            self.assignment_changes += 1
