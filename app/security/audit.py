"""The audit trail: one JSON record per mutation and per denial, to ``__audit`` and optionally a file.

A record (``audit_enabled``)::

    {"time": "2026-12-07T23:40:01.123Z", "request_id": "…", "principal": "User:alice",
     "auth_method": "api_key", "client": "10.0.0.7", "action": "DELETE /v1/topics/{topic}",
     "resource": "TOPIC:orders", "decision": "allow" | "deny", "status": 204}

``action`` is the route's method and template, ``resource`` what it named (``TYPE:name``, the
cluster as ``CLUSTER:kafka-cluster``); ``request_id`` is the request's ``X-Request-ID`` when the
client sent one, else a fresh UUID. Never a credential, a query string, a header or a payload.
Reads are not recorded unless refused.

Records go to the internal topic ``__audit`` (created at start with one partition; internal topics
are never opened by ``allow_everyone_if_no_acl_found``, so only super users and explicit ACLs read
it) through a bounded queue drained by one task, so a request never waits for its record; and, with
``audit_file``, one line each to that file. A full queue drops records and counts them in the log
rather than slowing the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from app.security.principal import principal_of

__all__ = ["AUDIT_TOPIC", "AuditLog"]

AUDIT_TOPIC: Final = "__audit"
_QUEUE_SIZE: Final = 10_000

logger = logging.getLogger("tidelog.audit")


def _now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _request_id(scope: Mapping[str, Any]) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return str(value.decode("latin-1")[:128])
    return str(uuid.uuid4())


class AuditLog:
    """Builds records and hands them to the topic writer and the file."""

    def __init__(self, *, file: Path | None = None) -> None:
        self._file = file
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0
        self.records_written = 0

    def record(
        self, scope: Mapping[str, Any], *, action: str, resource: str, decision: str, status: int
    ) -> dict[str, Any]:
        """Writes one record for the request of ``scope``; gives it back."""
        principal = principal_of(scope)
        client = scope.get("client")
        entry: dict[str, Any] = {
            "time": _now(),
            "request_id": _request_id(scope),
            "principal": principal.name,
            "auth_method": principal.auth_method,
            "client": client[0] if client else None,
            "action": action,
            "resource": resource,
            "decision": decision,
            "status": status,
        }
        line = orjson.dumps(entry)
        if self._file is not None:
            try:
                with self._file.open("ab") as out:
                    out.write(line + b"\n")
            except OSError:
                logger.warning("could not write the audit file", exc_info=True)
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped in (1, 100) or self._dropped % 10_000 == 0:
                logger.warning("audit queue full: %d records not written to %s", self._dropped, AUDIT_TOPIC)
        return entry

    async def start(self, broker: Any, topics: Any) -> None:
        """Creates ``__audit`` when missing and starts the task that appends to it."""
        await self._create(topics)
        self._task = asyncio.create_task(self._drain(broker, topics), name="tidelog-audit")

    async def _create(self, topics: Any) -> bool:
        """Whether ``__audit`` exists now (created here or before)."""
        from app.topics.errors import TopicExistsError

        try:
            await topics.create_topic(AUDIT_TOPIC, partitions=1, configs={"cleanup.policy": "delete"})
        except TopicExistsError:
            return True
        except Exception:  # e.g. a cluster whose brokers are not all up yet: retried on the next append
            logger.warning("could not create the %s topic yet", AUDIT_TOPIC, exc_info=True)
            return False
        return True

    async def _drain(self, broker: Any, topics: Any) -> None:
        from app.broker.formats import Format, pack_attributes
        from app.broker.produce import ParsedRecords
        from app.errors_base import UnknownTopicError
        from storage import RecordIn

        attributes = pack_attributes(Format.STRING, Format.JSON)
        while True:
            lines = [await self._queue.get()]
            while not self._queue.empty() and len(lines) < 500:
                lines.append(self._queue.get_nowait())
            parsed = ParsedRecords(
                records=[RecordIn(line, attributes=attributes) for line in lines],
                partitions=[0] * len(lines),
            )
            for attempt in range(2):
                try:
                    await broker.produce(AUDIT_TOPIC, parsed)
                    self.records_written += len(lines)
                    break
                except UnknownTopicError:
                    if attempt or not await self._create(topics):
                        logger.warning("%d audit records lost: no %s topic", len(lines), AUDIT_TOPIC)
                        break
                except Exception:
                    logger.warning("could not append %d audit records", len(lines), exc_info=True)
                    break

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
