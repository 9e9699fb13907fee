"""An SSE stream's resume state (tidelog._core.stream) without a broker: the cursor, reconnects and
their backoff, and max_records."""

from __future__ import annotations

import json

import pytest
from httpx_sse import ServerSentEvent

from tidelog import ConnectError, TransportError
from tidelog._core.stream import StreamState


def _state(**changes: object) -> StreamState:
    options: dict[str, object] = dict(
        cursor=None, reconnect=True, max_reconnects=2, read_timeout=5.0, key_format=None,
        value_format=None, max_records=2,
    )  # fmt: skip
    options.update(changes)
    return StreamState("/v1/topics/t/events", {"from": "earliest"}, **options)  # type: ignore[arg-type]


def _record_event(offset: int, cursor: str) -> ServerSentEvent:
    data = {"topic": "t", "partition": 0, "offset": offset, "timestamp": 1, "key": None, "value": offset}
    return ServerSentEvent(event="record", data=json.dumps(data), id=cursor)


def test_records_move_the_cursor_that_a_reconnection_resumes_from() -> None:
    state = _state()
    assert "Last-Event-ID" not in state.headers()
    assert state.record(ServerSentEvent(event="heartbeat", data="{}")) is None
    record = state.record(_record_event(4, "c5"))
    assert record is not None and record.offset == 4 and record.value == 4
    assert state.headers()["Last-Event-ID"] == "c5"
    assert not state.handed_out() and state.handed_out()  # max_records=2


def test_reconnects_back_off_and_give_up_after_max_reconnects() -> None:
    state = _state()
    state.connections = 1
    drop = TransportError("dropped")
    assert state.after_failure(drop, got_event=True, failures=5) == (True, 0)  # events reset the count
    assert state.backoff(0) == 0.05
    again, failures = state.after_failure(drop, got_event=False, failures=0)
    assert (again, failures) == (True, 1) and state.backoff(1) == 0.25
    assert state.after_failure(drop, got_event=False, failures=1) == (True, 2)
    assert state.backoff(2) == 0.5 and state.backoff(9) == 2.0
    with pytest.raises(TransportError):
        state.after_failure(drop, got_event=False, failures=2)
    state.heard(ServerSentEvent(event="record", data="{}", retry=3000))
    assert state.backoff(5) == 3.0  # the server's retry: is longer than the 2 s cap


def test_without_reconnect_a_first_connection_failure_is_raised_and_a_later_one_ends() -> None:
    state = _state(reconnect=False)
    with pytest.raises(ConnectError):
        state.after_failure(ConnectError("refused"), got_event=False, failures=0)
    state.connections = 1
    assert state.after_failure(TransportError("dropped"), got_event=True, failures=0) == (False, 0)
