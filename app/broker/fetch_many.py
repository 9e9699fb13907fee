"""One fetch for many partitions (Kafka's Fetch): a set of (topic, partition, offset) read at once.

``fetch_many`` reads every asked partition from its offset, each up to its own ``max_bytes`` and
all together up to the request's ``max_bytes`` (the first partition with data always gets one whole
batch, as in Kafka, so a batch larger than the budget cannot block a consumer); it answers at once
when the partitions hold ``min_bytes`` in all or one of them fails, else it waits until any of them
grows or ``max_wait_ms`` has passed (``fetch.min.bytes`` / ``fetch.max.wait.ms``). A partition
that cannot be read gets its own error — unknown topic or partition, offset out of range, or, in
a cluster, not the leader here with the leader named (KIP-951) — and the others are answered as
usual: the request as a whole is never redirected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors_base import TidelogError, UnknownPartitionError, UnknownTopicError

if TYPE_CHECKING:
    from app.broker.broker import Broker
    from app.broker.partitions import PartitionHandle

__all__ = ["PartitionData", "PartitionFetch", "fetch_many"]


@dataclass(frozen=True, slots=True)
class PartitionFetch:
    """One asked partition: where to read from and its own byte budget."""

    topic: str
    partition: int
    offset: int
    max_bytes: int


@dataclass(slots=True)
class PartitionData:
    """One partition's answer: whole batches from the one holding ``offset``, or ``error``."""

    topic: str
    partition: int
    offset: int
    data: bytes = b""
    high_watermark: int = -1
    log_start_offset: int = -1
    error: TidelogError | None = None


async def fetch_many(
    broker: Broker,
    wanted: Sequence[PartitionFetch],
    *,
    min_bytes: int,
    max_wait_ms: int,
    max_bytes: int,
    leader_only: bool = True,
    authorize: Callable[[str], None] | None = None,
) -> list[PartitionData]:
    """Every asked partition's data or error, in request order, per the module docstring.

    ``authorize(topic)`` raises the caller's refusal for a topic it may not READ (ACLs): that
    partition's error, as Kafka's Fetch answers TOPIC_AUTHORIZATION_FAILED per partition.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_ms / 1000.0
    handles: list[PartitionHandle | None] = []
    answers = [PartitionData(w.topic, w.partition, w.offset) for w in wanted]
    # A topic refused or unknown once is so for every partition of it in this request: asked once,
    # so a request naming one missing topic ten thousand times costs one lookup, not ten thousand.
    refused: dict[str, TidelogError] = {}
    reloaded: set[str] = set()  # topics re-read from the catalog for a partition beyond their count
    for want, answer in zip(wanted, answers, strict=True):
        try:
            if want.topic in refused:
                raise refused[want.topic]
            if authorize is not None:
                try:
                    authorize(want.topic)
                except TidelogError as exc:
                    refused[want.topic] = exc
                    raise
            try:
                found = await broker.partition(
                    want.topic, want.partition, refresh=want.topic not in reloaded
                )
            except UnknownTopicError as exc:
                refused[want.topic] = exc
                raise
            except UnknownPartitionError:
                reloaded.add(want.topic)
                raise
            await broker.replication.ensure_known(found)
            broker.replication.check_fetch(found, want.offset, leader_only=leader_only)
        except TidelogError as exc:
            answer.error = exc
            handles.append(None)
            continue
        handles.append(found)
    while True:
        total = 0
        failed = False
        for want, answer, handle in zip(wanted, answers, handles, strict=True):
            if handle is None:
                failed = True
                continue
            budget = min(want.max_bytes, max_bytes - total)
            if budget <= 0 and total > 0:
                answer.data = b""  # the request's budget is spent: this partition waits for the next fetch
                answer.high_watermark = handle.log.high_watermark
                answer.log_start_offset = handle.log.log_start_offset
                continue
            try:
                data, _position, hw, log_start = await broker.read_when_ready(
                    handle, want.topic, want.offset, max(budget, 1), 0, 0
                )
            except TidelogError as exc:
                answer.error = exc
                failed = True
                continue
            answer.data, answer.high_watermark, answer.log_start_offset = data, hw, log_start
            total += len(data)
        remaining = deadline - loop.time()
        if failed or total >= min_bytes or remaining <= 0:
            return answers
        positions = {
            (w.topic, w.partition): w.offset for w, h in zip(wanted, handles, strict=True) if h is not None
        }
        await broker.wait_for_data(positions, remaining)
        if broker.closed:
            deadline = loop.time()  # shutting down: the next round answers with what there is
