"""Errors at every stage of a task: retries, the tolerance decision, the log and the dead-letter topic.

Kafka's ``RetryWithToleranceOperator`` and ``DeadLetterQueueReporter``, with tidelog's classification
(``tidelog.connect.api.classify``):

- an outage (:class:`RetriableError`) is retried with exponential backoff from 300 ms, each wait at
  most ``errors.retry.delay.max.ms``, until ``errors.retry.timeout`` ms have passed (0: no retry, -1:
  for ever); then the task FAILS. An outage never reaches the dead-letter topic, so an expired
  token or a database restart never empties a topic into it;
- a data error goes to the tolerance decision: ``errors.tolerance=none`` fails the task;
  ``all`` skips the record (counted per stage, logged when ``errors.log.enable``) and, with
  ``errors.deadletterqueue.topic.name``, sends its original key, value and headers to that topic,
  with ``__connect.errors.*`` headers when ``errors.deadletterqueue.context.headers.enable``;
- anything else fails the task.
The pure part (:class:`RetrySchedule`, :func:`context_headers`) is tested without I/O.
"""

from __future__ import annotations

import enum
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RETRY_DELAY_MIN_MS",
    "ErrorCounters",
    "RetrySchedule",
    "Stage",
    "TaskFailedError",
    "ToleranceConfig",
    "context_headers",
]

RETRY_DELAY_MIN_MS = 300  # Kafka's RetryWithToleranceOperator.RETRIES_DELAY_MIN_MS


class Stage(enum.Enum):
    """Kafka's ``Stage``: where in the pipeline an error happened."""

    TASK_POLL = "TASK_POLL"
    KEY_CONVERTER = "KEY_CONVERTER"
    VALUE_CONVERTER = "VALUE_CONVERTER"
    HEADER_CONVERTER = "HEADER_CONVERTER"
    TRANSFORMATION = "TRANSFORMATION"
    KAFKA_PRODUCE = "KAFKA_PRODUCE"
    KAFKA_CONSUME = "KAFKA_CONSUME"
    TASK_PUT = "TASK_PUT"


class TaskFailedError(Exception):
    """The task must stop in FAILED; ``__cause__`` is the error that failed it."""

    def __init__(self, stage: Stage, error: BaseException) -> None:
        super().__init__(f"{stage.value}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@dataclass(frozen=True, slots=True)
class ToleranceConfig:
    retry_timeout_ms: int = 0
    retry_delay_max_ms: int = 60_000
    tolerance_all: bool = False
    log_enable: bool = False
    log_include_messages: bool = False
    dlq_topic: str = ""
    dlq_context_headers: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ToleranceConfig:
        return cls(
            retry_timeout_ms=int(config.get("errors.retry.timeout", 0)),
            retry_delay_max_ms=int(config.get("errors.retry.delay.max.ms", 60_000)),
            tolerance_all=config.get("errors.tolerance", "none") == "all",
            log_enable=bool(config.get("errors.log.enable", False)),
            log_include_messages=bool(config.get("errors.log.include.messages", False)),
            dlq_topic=str(config.get("errors.deadletterqueue.topic.name", "") or ""),
            dlq_context_headers=bool(config.get("errors.deadletterqueue.context.headers.enable", False)),
        )


class RetrySchedule:
    """The waits between attempts of one operation: 300 ms, doubling, capped, within the timeout."""

    def __init__(self, config: ToleranceConfig, started_ms: float) -> None:
        self.config = config
        self.started_ms = started_ms
        self.attempt = 0

    def remaining_ms(self, now_ms: float) -> float:
        """Gives how long retrying may still go on (infinite for ``errors.retry.timeout=-1``)."""
        timeout = self.config.retry_timeout_ms
        return float("inf") if timeout < 0 else max(0.0, self.started_ms + timeout - now_ms)

    def next_delay_ms(self, now_ms: float) -> float | None:
        """Gives how long to wait before the next attempt, or ``None`` when retrying is over."""
        timeout = self.config.retry_timeout_ms
        if timeout == 0:
            return None
        delay = min(RETRY_DELAY_MIN_MS * (2**self.attempt), self.config.retry_delay_max_ms)
        self.attempt += 1
        if timeout > 0:
            remaining = self.started_ms + timeout - now_ms
            if remaining <= 0:
                return None
            delay = min(delay, remaining)
        return float(delay)


class ErrorCounters:
    """Kafka's task-error-metrics, per stage: records skipped, errors logged, dead-lettered."""

    def __init__(self) -> None:
        self.records_failed: dict[str, int] = {}
        self.records_skipped = 0
        self.errors_logged = 0
        self.dlq_produce_requests = 0
        self.retries = 0

    def failed(self, stage: Stage) -> None:
        self.records_failed[stage.value] = self.records_failed.get(stage.value, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total-record-failures": dict(self.records_failed),
            "total-records-skipped": self.records_skipped,
            "total-errors-logged": self.errors_logged,
            "deadletterqueue-produce-requests": self.dlq_produce_requests,
            "total-retries": self.retries,
        }


def context_headers(
    *,
    stage: Stage,
    operation_class: str,
    error: BaseException,
    connector: str,
    task: int,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> dict[str, str]:
    """Gives Kafka's ``__connect.errors.*`` headers of a dead-lettered record."""
    headers = {}
    if topic is not None:
        headers["__connect.errors.topic"] = topic
    if partition is not None:
        headers["__connect.errors.partition"] = str(partition)
    if offset is not None:
        headers["__connect.errors.offset"] = str(offset)
    headers["__connect.errors.connector.name"] = connector
    headers["__connect.errors.task.id"] = str(task)
    headers["__connect.errors.stage"] = stage.value
    headers["__connect.errors.class.name"] = operation_class
    headers["__connect.errors.exception.class.name"] = f"{type(error).__module__}.{type(error).__qualname__}"
    headers["__connect.errors.exception.message"] = str(error)
    headers["__connect.errors.exception.stacktrace"] = "".join(traceback.format_exception(error))
    return headers
