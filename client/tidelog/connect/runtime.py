"""One running task: Kafka's ``WorkerSourceTask`` and ``WorkerSinkTask``, over the public HTTP API.

Source: ``poll`` → (conversion errors, transforms) → idempotent ``acks=all`` produce. Each record is
submitted to :class:`SubmittedRecords` and acknowledged when its produce (or, for a tolerated error,
its dead-letter record) is acknowledged; every ``offset.flush.interval.ms`` the contiguous
acknowledged prefix is stored through the broker with the assignment's generation (a stale one is
refused: the task stops), then ``SourceTask.commit`` is called.

Sink: the consumer group ``connect-<name>`` (the task's members share the partitions) → transforms →
``put`` (retries, bisection of a batch that raised a data error, per-record outcomes) →
``flush`` → commit of the next offsets. A record's offset is committed only after it was put, skipped
by tolerance, or dead-lettered.

Plugin methods may be ``async def`` (awaited) or plain (run in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tidelog import _errors as client_errors
from tidelog._client import AsyncClient
from tidelog.connect import _rest
from tidelog.connect.api import (
    SinkRecord,
    SinkTask,
    SinkTaskContext,
    SourceOffset,
    SourcePartition,
    SourceRecord,
    SourceTask,
    SourceTaskContext,
    classify,
)
from tidelog.connect.submitted import SubmittedRecord, SubmittedRecords, partition_key
from tidelog.connect.tolerance import (
    ErrorCounters,
    RetrySchedule,
    Stage,
    TaskFailedError,
    ToleranceConfig,
    context_headers,
)
from tidelog.connect.transforms import Chain

__all__ = ["SinkRunner", "SourceRunner", "TaskContext", "TaskStoppingError", "call_plugin"]

log = logging.getLogger("tidelog.connect.task")
T = TypeVar("T")
OFFSET_FLUSH_INTERVAL_S = 1.0  # Kafka's offset.flush.interval.ms is 60 s; short here, offsets are cheap


class TaskStoppingError(Exception):
    """The task is being stopped while an operation waited to be retried: it ends without committing."""


async def call_plugin(fn: Callable[..., Any], *args: Any) -> Any:
    """Calls a plugin method: awaited when ``async def``, in a thread otherwise."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


BROKER_RETRY_TIMEOUT_MS = 120_000


def broker_kind(error: BaseException) -> str:
    """How a failed call to the brokers counts: the client's retriable errors are outages."""
    if isinstance(error, client_errors.TidelogError) and error.retriable:
        return "retriable"
    return classify(error)


def _delivery_kind(error: BaseException) -> str:
    """How a produce failure counts: a record the broker refuses is data, anything else an outage."""
    if isinstance(
        error,
        (
            client_errors.RecordTooLargeError,
            client_errors.InvalidRecordError,
            client_errors.InvalidTimestampError,
        ),
    ):
        return "data"
    return "retriable"


@dataclass
class TaskContext:
    """What a runner needs: who it is, its config, and the broker."""

    client: AsyncClient
    worker_id: str
    connector: str
    task_id: int
    generation: int
    config: Mapping[str, Any]
    chain: Chain
    tolerance: ToleranceConfig
    counters: ErrorCounters = field(default_factory=ErrorCounters)


class _Runner:
    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.paused = False
        self.stopping = asyncio.Event()
        self._topics_created: set[str] = set()
        self._dlq_producer: Any = None

    async def close_dlq(self) -> None:
        if self._dlq_producer is not None:
            producer, self._dlq_producer = self._dlq_producer, None
            await producer.close()

    async def retrying(
        self,
        stage: Stage,
        operation: Callable[[], Awaitable[T]],
        kinds: Callable[[BaseException], str] = classify,
    ) -> T:
        """Runs ``operation``, retrying outages within ``errors.retry.timeout``; an outage beyond it,
        or a fatal error, raises :class:`TaskFailedError`. Data errors are raised as they are.

        Calls to the brokers themselves (``kinds=broker_kind``) get at least
        ``BROKER_RETRY_TIMEOUT_MS``: a broker restarting is not a reason to fail every task."""
        tolerance = self.ctx.tolerance
        if kinds is broker_kind and 0 <= tolerance.retry_timeout_ms < BROKER_RETRY_TIMEOUT_MS:
            tolerance = dataclasses.replace(
                tolerance,
                retry_timeout_ms=BROKER_RETRY_TIMEOUT_MS,
                retry_delay_max_ms=min(tolerance.retry_delay_max_ms, 2000),
            )
        schedule = RetrySchedule(tolerance, time.monotonic() * 1000)
        while True:
            try:
                return await operation()
            except TaskFailedError:
                raise
            except Exception as error:
                kind = kinds(error)
                if kind == "data":
                    raise
                if kind != "retriable":
                    raise TaskFailedError(stage, error) from error
                delay = schedule.next_delay_ms(time.monotonic() * 1000)
                if self.stopping.is_set():
                    raise TaskStoppingError from error
                if delay is None:
                    raise TaskFailedError(stage, error) from error
                self.ctx.counters.retries += 1
                log.info(
                    "%s/%d %s: %s; retrying in %.0f ms",
                    self.ctx.connector,
                    self.ctx.task_id,
                    stage.value,
                    error,
                    delay,
                )
                await asyncio.sleep(delay / 1000)

    async def ensure_topic(self, topic: str) -> None:
        """Creates ``topic`` with the broker's defaults when it does not exist (KIP-158's default)."""
        if topic in self._topics_created:
            return
        with contextlib.suppress(client_errors.TopicExistsError):
            await self.ctx.client.admin.create_topic(topic)
        self._topics_created.add(topic)

    async def tolerate(
        self,
        stage: Stage,
        operation_class: str,
        error: BaseException,
        *,
        key: Any,
        value: Any,
        headers: Mapping[str, Any] | None,
        where: Mapping[str, Any],
    ) -> None:
        """Applies ``errors.tolerance`` to a record's data error: fail, or skip (log, dead-letter)."""
        ctx, config = self.ctx, self.ctx.tolerance
        ctx.counters.failed(stage)
        if not config.tolerance_all:
            raise TaskFailedError(stage, error) from error
        ctx.counters.records_skipped += 1
        if config.log_enable:
            ctx.counters.errors_logged += 1
            shown = f" key={key!r} value={value!r}" if config.log_include_messages else ""
            log.error(
                "error in %s/%d at %s (%s) for %s: %s%s",
                ctx.connector,
                ctx.task_id,
                stage.value,
                operation_class,
                dict(where),
                error,
                shown,
            )
        if not config.dlq_topic:
            return
        out_headers: dict[str, Any] = {str(k): v for k, v in (headers or {}).items()}
        if config.dlq_context_headers:
            out_headers.update(
                context_headers(
                    stage=stage,
                    operation_class=operation_class,
                    error=error,
                    connector=ctx.connector,
                    task=ctx.task_id,
                    **where,
                )
            )
        await self.ensure_topic(config.dlq_topic)

        async def send() -> None:
            if self._dlq_producer is None:
                self._dlq_producer = self.ctx.client.producer(acks="all", idempotent=True, key_format="json")
            await self._dlq_producer.send_and_wait(
                config.dlq_topic, value, key=key, headers=out_headers or None
            )

        await self.retrying(Stage.KAFKA_PRODUCE, send, _delivery_kind)
        ctx.counters.dlq_produce_requests += 1


class SourceRunner(_Runner):
    """Runs one SourceTask until stopped; raises :class:`TaskFailedError` when it fails."""

    def __init__(self, ctx: TaskContext, task: SourceTask) -> None:
        super().__init__(ctx)
        self.task = task
        self.submitted = SubmittedRecords()
        self.stored: dict[str, dict[str, Any]] = {}
        self.topics: set[str] = set()
        self._reported_topics: set[str] = set()
        self._failures: list[tuple[BaseException, SourceRecord, SubmittedRecord]] = []
        self._in_flight: set[asyncio.Future[Any]] = set()

    async def load_offsets(self) -> None:
        answer = await self.ctx.client.call(
            _rest.connector_call("GET", f"/connectors/{_rest._seg(self.ctx.connector)}/offsets")
        )
        for entry in (answer or {}).get("offsets", []):
            self.stored[partition_key(entry["partition"])] = entry["offset"]

    async def run(self) -> None:
        ctx = self.ctx
        await self.load_offsets()
        runner = self

        class Context(SourceTaskContext):
            def offset(self, partition: SourcePartition) -> SourceOffset | None:
                return runner.stored.get(partition_key(partition))

        await call_plugin(self.task.start, ctx.config, Context())
        try:
            async with ctx.client.producer(acks="all", idempotent=True, key_format="json") as producer:
                last_commit = time.monotonic()
                while not self.stopping.is_set():
                    self._raise_failures()
                    if self.paused:
                        await self._sleep(0.2)
                    else:
                        records = await self.retrying(Stage.TASK_POLL, lambda: call_plugin(self.task.poll))
                        for record in records or ():
                            await self._handle(producer, record)
                        await self._tolerate_refused()
                    if time.monotonic() - last_commit >= OFFSET_FLUSH_INTERVAL_S:
                        await self.commit()
                        last_commit = time.monotonic()
                await producer.flush()
                # every delivery callback has run (they were added before gather's own) before the
                # last commit: the records just acknowledged are not produced again by the next owner
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                await self._tolerate_refused()
                self._raise_failures()
                await self.commit()
        finally:
            await self.close_dlq()
            await call_plugin(self.task.stop)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    def _raise_failures(self) -> None:
        """Fails the task on an outage the producer gave up on (refused records wait for tolerance)."""
        for error, _record, _submitted in self._failures:
            if _delivery_kind(error) != "data":
                raise TaskFailedError(Stage.KAFKA_PRODUCE, error) from error

    async def _handle(self, producer: Any, record: SourceRecord) -> None:
        submitted = self.submitted.submit(record.source_partition, record.source_offset)
        where = {"topic": record.topic}
        if record.error is not None:
            await self._tolerate_source(Stage.VALUE_CONVERTER, type(self.task).__name__, record.error, record)
            submitted.ack()
            return
        steps: list[str] = []
        try:
            transformed = self.ctx.chain.apply(record, steps.append)
        except Exception as error:
            operation = steps[-1] if steps else "transforms"
            await self.tolerate(
                Stage.TRANSFORMATION,
                operation,
                error,
                key=record.key,
                value=record.value,
                headers=record.headers,
                where=where,
            )
            submitted.ack()
            return
        if transformed is None:
            submitted.ack()  # dropped by a Filter: handled
            return
        await self.ensure_topic(transformed.topic)
        self.topics.add(transformed.topic)
        future = await producer.send(
            transformed.topic,
            transformed.value,
            key=transformed.key,
            headers=dict(transformed.headers) if transformed.headers else None,
            partition=transformed.partition,
            timestamp=transformed.timestamp_ms,
        )

        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                self._failures.append((asyncio.CancelledError(), record, submitted))
                return
            error = fut.exception()
            if error is None:
                submitted.ack()
            else:
                self._failures.append((error, record, submitted))

        future.add_done_callback(done)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    async def _tolerate_refused(self) -> None:
        """A delivery refused for the record itself goes to tolerance; an outage fails the task."""
        data_failures = [f for f in self._failures if _delivery_kind(f[0]) == "data"]
        for failure in data_failures:
            self._failures.remove(failure)
            produce_error, failed, failed_submitted = failure
            await self.tolerate(
                Stage.KAFKA_PRODUCE,
                "producer",
                produce_error,
                key=failed.key,
                value=failed.value,
                headers=failed.headers,
                where={"topic": failed.topic},
            )
            failed_submitted.ack()

    async def _tolerate_source(
        self, stage: Stage, operation: str, error: BaseException, record: SourceRecord
    ) -> None:
        await self.tolerate(
            stage,
            operation,
            error,
            key=record.key,
            value=record.value,
            headers=record.headers,
            where={"topic": record.topic},
        )

    async def commit(self) -> None:
        """Stores the acknowledged prefix's offsets (refused, and the task stopped, when stale)."""
        committable = self.submitted.committable()
        new_topics = self.topics - self._reported_topics
        if not committable and not new_topics:
            return
        ctx = self.ctx
        offsets = [{"partition": p, "offset": o} for p, o in committable.values()]
        await ctx.client.call(
            _rest.commit_task(
                ctx.connector,
                ctx.task_id,
                worker_id=ctx.worker_id,
                generation=ctx.generation,
                offsets=offsets,
                topics=sorted(new_topics),
            )
        )
        self._reported_topics |= new_topics
        for key, (_partition, offset) in committable.items():
            self.stored[key] = offset
        if committable:
            await call_plugin(self.task.commit, {k: o for k, (_p, o) in committable.items()})


_REBALANCED = (
    client_errors.IllegalGenerationError,
    client_errors.UnknownMemberError,
    client_errors.RebalanceInProgressError,
)


@dataclass
class _Item:
    record: SinkRecord
    original: SinkRecord


class SinkRunner(_Runner):
    """Runs one SinkTask until stopped; raises :class:`TaskFailedError` when it fails."""

    def __init__(self, ctx: TaskContext, task: SinkTask) -> None:
        super().__init__(ctx)
        self.task = task

    async def run(self) -> None:
        ctx = self.ctx
        topics = [t for t in ctx.config.get("topics", []) if t]
        pattern = ctx.config.get("topics.regex") or None
        for topic in topics:  # a group subscribed to a missing topic would wait for a metadata refresh
            await self.retrying(Stage.KAFKA_CONSUME, functools.partial(self.ensure_topic, topic), broker_kind)
        consumer = ctx.client.consumer(
            f"connect-{ctx.connector}",
            topics or None,
            topic_pattern=pattern,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            assignor="cooperative-sticky",
            session_timeout_ms=10_000,
        )
        runner = self

        class Context(SinkTaskContext):
            def assignment(self) -> Sequence[tuple[str, int]]:
                return [(tp.topic, tp.partition) for tp in consumer.assignment()]

        await call_plugin(self.task.start, ctx.config, Context())
        try:
            async with consumer:
                reported = False
                while not self.stopping.is_set():
                    if self.paused:
                        await asyncio.sleep(0.2)
                        continue
                    records = await self.retrying(
                        Stage.KAFKA_CONSUME, lambda: consumer.poll(500), broker_kind
                    )
                    if not records:
                        continue
                    if not reported:
                        await runner._report_topics(topics)
                        reported = True
                    items: list[_Item] = []
                    next_offsets: dict[tuple[str, int], int] = {}
                    for r in records:
                        next_offsets[(r.topic, r.partition)] = r.offset + 1
                        original = SinkRecord(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value,
                            {k: v for k, v in r.headers if isinstance(v, str)},
                            r.timestamp,
                        )
                        item = await self._transform(original)
                        if item is not None:
                            items.append(item)
                    await self.deliver(items)
                    await self.retrying(
                        Stage.TASK_PUT, functools.partial(call_plugin, self.task.flush, dict(next_offsets))
                    )
                    try:
                        await self.retrying(
                            Stage.KAFKA_CONSUME,
                            functools.partial(consumer.commit, dict(next_offsets)),
                            broker_kind,
                        )
                    except TaskFailedError as error:
                        if not isinstance(error.error, _REBALANCED):
                            raise
                        # the partitions moved on: their next owner re-reads from the last commit
                        log.info(
                            "%s/%d: commit after a rebalance refused: %s",
                            ctx.connector,
                            ctx.task_id,
                            error.error,
                        )
        finally:
            await self.close_dlq()
            await call_plugin(self.task.stop)

    async def _report_topics(self, topics: Sequence[str]) -> None:
        ctx = self.ctx
        if topics:
            await ctx.client.call(
                _rest.commit_task(
                    ctx.connector,
                    ctx.task_id,
                    worker_id=ctx.worker_id,
                    generation=ctx.generation,
                    offsets=[],
                    topics=list(topics),
                )
            )

    @staticmethod
    def _where(record: SinkRecord) -> dict[str, Any]:
        return {"topic": record.topic, "partition": record.partition, "offset": record.offset}

    async def _transform(self, original: SinkRecord) -> _Item | None:
        steps: list[str] = []
        try:
            transformed = self.ctx.chain.apply(original, steps.append)
        except Exception as error:
            await self.tolerate(
                Stage.TRANSFORMATION,
                steps[-1] if steps else "transforms",
                error,
                key=original.key,
                value=original.value,
                headers=original.headers,
                where=self._where(original),
            )
            return None
        return None if transformed is None else _Item(transformed, original)

    async def deliver(self, items: Sequence[_Item]) -> None:
        """Puts ``items``: retries outages, bisects a batch that raised a data error, and applies
        tolerance to each record reported (or found) bad."""
        pending = list(items)
        schedule = RetrySchedule(self.ctx.tolerance, time.monotonic() * 1000)
        operation = type(self.task).__name__
        while pending:
            try:
                outcomes = await call_plugin(self.task.put, [i.record for i in pending])
            except Exception as error:
                kind = classify(error)
                if kind == "data":
                    if len(pending) == 1:
                        await self._tolerate_item(operation, error, pending[0])
                        return
                    middle = len(pending) // 2
                    await self.deliver(pending[:middle])
                    await self.deliver(pending[middle:])
                    return
                if kind != "retriable":
                    raise TaskFailedError(Stage.TASK_PUT, error) from error
                await self._wait(schedule, error)
                continue
            again: list[_Item] = []
            last_outage: BaseException | None = None
            for item, outcome in zip(pending, list(outcomes or [None] * len(pending)), strict=False):
                if outcome is None:
                    continue
                kind = classify(outcome)
                if kind == "retriable":
                    again.append(item)
                    last_outage = outcome
                elif kind == "data":
                    await self._tolerate_item(operation, outcome, item)
                else:
                    raise TaskFailedError(Stage.TASK_PUT, outcome) from outcome
            if again and last_outage is not None:
                await self._wait(schedule, last_outage)
            pending = again

    async def _wait(self, schedule: RetrySchedule, error: BaseException) -> None:
        if self.stopping.is_set():
            raise TaskStoppingError  # nothing more is committed: the next owner puts these again
        delay = schedule.next_delay_ms(time.monotonic() * 1000)
        if delay is None:
            raise TaskFailedError(Stage.TASK_PUT, error) from error
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after:  # the target said when: never sooner, never past the retry timeout
            delay = max(delay, min(float(retry_after) * 1000, schedule.remaining_ms(time.monotonic() * 1000)))
        self.ctx.counters.retries += 1
        log.info(
            "%s/%d TASK_PUT: %s; retrying in %.0f ms", self.ctx.connector, self.ctx.task_id, error, delay
        )
        await asyncio.sleep(delay / 1000)

    async def _tolerate_item(self, operation: str, error: BaseException, item: _Item) -> None:
        original = item.original
        await self.tolerate(
            Stage.TASK_PUT,
            operation,
            error,
            key=original.key,
            value=original.value,
            headers=original.headers,
            where=self._where(original),
        )
