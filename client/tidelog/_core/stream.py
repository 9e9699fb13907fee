"""An SSE stream's resume state, without I/O: the cursor, when and how soon to connect again, which
events are records, and when ``max_records`` is reached.

Each ``record`` event carries an ``id:``, a cursor holding the next offset of every partition of the
stream. The state remembers the last one; a reconnection sends it as ``Last-Event-ID`` so delivery
continues right after the last record handed out (no gap, no duplicate). ``_sse._Stream`` runs the
connection loop, with httpx and ``threading.Event.wait`` or ``asyncio.sleep``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Generic, TypeVar, cast

from httpx_sse import ServerSentEvent

from tidelog._errors import TidelogError, TransportError
from tidelog._types import Record

__all__ = ["StreamOption", "StreamState"]

log = logging.getLogger("tidelog.sse")
T = TypeVar("T")


class StreamOption(Generic[T]):
    """A stream attribute kept in its ``StreamState`` (readable and settable, as it always was)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, shell: Any, owner: type | None = None) -> T:
        return cast(T, getattr(shell._state, self.name))

    def __set__(self, shell: Any, value: T) -> None:
        setattr(shell._state, self.name, value)


class StreamState:
    """Where a stream stands: its cursor, connections, records handed out and reconnect policy."""

    def __init__(
        self,
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
        self.path = path
        self.params = params
        self.cursor = cursor
        self.reconnect = reconnect
        self.max_reconnects = max_reconnects
        self.read_timeout = read_timeout
        self.key_format = key_format
        self.value_format = value_format
        self.max_records = max_records
        self.connections = 0  # how many times the stream connected; > 1 after a resume
        self.delivered = 0
        self.retry_s = 0.25  # the server's `retry:` field replaces it

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.cursor:
            headers["Last-Event-ID"] = self.cursor
        return headers

    def backoff(self, failures: int) -> float:
        """Seconds before connecting again: at once-ish after a drop, then doubling, at most 2 s
        (or the server's ``retry:`` if longer), so a restarted broker is found soon after it is up."""
        if failures == 0:
            return 0.05
        return float(min(self.retry_s * (1 << min(failures - 1, 10)), max(2.0, self.retry_s)))

    def after_failure(self, error: TidelogError, got_event: bool, failures: int) -> tuple[bool, int]:
        """Decide whether to connect again after ``error``; return (reconnect, consecutive failures)."""
        if not self.reconnect:
            if isinstance(error, TransportError) and not got_event and self.connections == 0:
                raise error
            return False, failures
        failures = 0 if got_event else failures + 1
        if failures > self.max_reconnects:
            raise error
        log.info("event stream %s dropped (%s); resuming from cursor %s", self.path, error, self.cursor)
        return True, failures

    def heard(self, event: ServerSentEvent) -> None:
        """Any event: the server's ``retry:`` sets the reconnect delay."""
        if event.retry:
            self.retry_s = event.retry / 1000.0

    def record(self, event: ServerSentEvent) -> Record | None:
        """The record a ``record`` event carries (its id becomes the cursor); None for other events."""
        if event.event != "record":
            return None
        record = Record.from_json(
            json.loads(event.data), key_format=self.key_format, value_format=self.value_format
        )
        if event.id:
            self.cursor = event.id
        return record

    def handed_out(self) -> bool:
        """Count a record handed to the application; return whether ``max_records`` is reached."""
        self.delivered += 1
        return self.max_records is not None and self.delivered >= self.max_records

    @staticmethod
    def ended() -> TransportError:
        return TransportError("the broker ended the stream")
