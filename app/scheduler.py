"""The retention scheduler: every ``log_retention_check_interval_ms`` (Kafka's
``log.retention.check.interval.ms``) it runs ``broker.enforce_retention()`` (time and size retention,
then compaction of ``cleanup.policy=compact`` topics) in a worker thread, logs what it did and counts
it in ``/metrics``.

One run at a time: the next one is scheduled when the previous finishes, so a slow run never stacks
up behind itself. Stopping waits for a run in progress to finish (a thread cannot be interrupted
half-way through a segment deletion) before the logs are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from anyio import to_thread

from app.metrics import Metrics

__all__ = ["RetentionScheduler", "RetentionStatsLike"]

logger = logging.getLogger("tidelog.retention")


class RetentionStatsLike(Protocol):
    @property
    def segments_deleted(self) -> int: ...
    @property
    def partitions_compacted(self) -> int: ...


class RetentionTarget(Protocol):
    def enforce_retention(self) -> RetentionStatsLike: ...


class RetentionScheduler:
    """Runs retention and compaction periodically until ``stop()``."""

    def __init__(self, broker: RetentionTarget, metrics: Metrics, *, interval_ms: int) -> None:
        self.broker = broker
        self.metrics = metrics
        self.interval_s = interval_ms / 1000
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="tidelog-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run_once(self) -> RetentionStatsLike | None:
        """One retention and compaction pass; errors are logged and counted, never raised."""
        started = time.perf_counter()
        try:
            stats = await to_thread.run_sync(self.broker.enforce_retention)
        except Exception:
            self.metrics.retention_runs.labels("error").inc()
            logger.exception("retention run failed")
            return None
        finally:
            self.runs += 1
            self.metrics.retention_seconds.observe(time.perf_counter() - started)
        self.metrics.retention_runs.labels("ok").inc()
        self.metrics.retention_segments_deleted.inc(stats.segments_deleted)
        self.metrics.compactions.inc(stats.partitions_compacted)
        if stats.segments_deleted or stats.partitions_compacted:
            logger.info(
                "retention deleted %d segments, compacted %d partitions in %.3f s",
                stats.segments_deleted, stats.partitions_compacted, time.perf_counter() - started,
            )
        else:
            logger.debug("retention run: nothing to delete or compact")
        return stats

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.run_once()
