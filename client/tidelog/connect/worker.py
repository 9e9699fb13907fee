"""The ``tidelog connect`` worker: heartbeats to the brokers and runs the tasks they assign to it.

How tasks reach workers (docs/connect.md, "Workers"): every worker heartbeats
``POST /v1/connect/workers/{id}/heartbeat`` about once a second with the tasks it runs; the broker
renews its lease and runs the assignment in the catalog (incremental cooperative, KIP-415: only tasks
that must move move, and a task goes to its new worker only after the old one reported it stopped).
The answer lists this worker's tasks with their configs, assignment generation, restart epoch and
the connector's target state; the worker starts, stops, pauses and restarts tasks to match. A worker
whose lease ran out (no successful heartbeat for its session timeout) stops every task itself, so
its tasks, reassigned by then, never run twice for long; a killed worker's tasks move once its lease
expires (10 s by default).

A failed task reports FAILED with its trace; with ``tasks.restart.max`` > 0 the worker restarts it
after ``tasks.restart.backoff.ms`` (doubling each time), up to that many times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidelog import _errors as client_errors
from tidelog._client import AsyncClient
from tidelog.connect import _rest, plugins
from tidelog.connect.api import SinkTask, SourceTask
from tidelog.connect.config import ConfigValidationError, hide, normalise, parse_groups, resolve_providers
from tidelog.connect.runtime import SinkRunner, SourceRunner, TaskContext, TaskStoppingError
from tidelog.connect.tolerance import TaskFailedError, ToleranceConfig
from tidelog.connect.transforms import build_chain

__all__ = ["Worker"]

log = logging.getLogger("tidelog.connect.worker")
TaskKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Assignment:
    connector: str
    task: int
    generation: int
    restart_epoch: int
    target_state: str
    connector_config: dict[str, str | None]
    task_config: dict[str, str | None]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Assignment:
        return cls(
            str(body["connector"]),
            int(body["task"]),
            int(body["generation"]),
            int(body["restart_epoch"]),
            str(body["target_state"]),
            dict(body["connector_config"]),
            dict(body["task_config"]),
        )


class TaskHandle:
    """One assigned task on this worker: its runner, restarts, and reported state."""

    def __init__(self, worker: Worker, assignment: Assignment) -> None:
        self.worker = worker
        self.assignment = assignment
        self.runner: SourceRunner | SinkRunner | None = None
        self.stopping = asyncio.Event()
        self.fenced = False
        self.task: asyncio.Task[None] = asyncio.create_task(self._main(), name=f"connect-{self.key}")

    @property
    def key(self) -> TaskKey:
        return (self.assignment.connector, self.assignment.task)

    async def report(self, state: str, trace: str | None = None) -> None:
        a = self.assignment
        try:
            await self.worker.client.call(
                _rest.report_status(
                    a.connector,
                    a.task,
                    worker_id=self.worker.worker_id,
                    generation=a.generation,
                    state=state,
                    trace=trace,
                )
            )
        except client_errors.StaleTaskGenerationError:
            self.fenced = True
            self.stopping.set()
        except client_errors.TidelogError as error:
            log.warning("could not report %s of %s/%d: %s", state, a.connector, a.task, error)

    def _build(self) -> SourceRunner | SinkRunner:
        a = self.assignment
        merged = resolve_providers({**a.connector_config, **a.task_config})
        cls = plugins.find(str(merged.get("connector.class")))
        values = parse_groups(plugins.config_groups(cls), merged)
        ctx = TaskContext(
            client=self.worker.client,
            worker_id=self.worker.worker_id,
            connector=a.connector,
            task_id=a.task,
            generation=a.generation,
            config=values,
            chain=build_chain(normalise(merged)),
            tolerance=ToleranceConfig.from_config(values),
        )
        task = cls.task_class()()
        if isinstance(task, SourceTask):
            return SourceRunner(ctx, task)
        assert isinstance(task, SinkTask)
        return SinkRunner(ctx, task)

    def set_target(self, state: str) -> None:
        previous = self.assignment
        self.assignment = Assignment(
            previous.connector,
            previous.task,
            previous.generation,
            previous.restart_epoch,
            state,
            previous.connector_config,
            previous.task_config,
        )
        if self.runner is not None:
            paused = state == "PAUSED"
            if paused != self.runner.paused:
                self.runner.paused = paused
                self.worker.spawn(self.report("PAUSED" if paused else "RUNNING"))

    async def _main(self) -> None:
        restarts = 0
        while not self.stopping.is_set():
            try:
                runner = self._build()
            except (ConfigValidationError, plugins.UnknownPluginError) as error:
                await self.report("FAILED", f"{type(error).__name__}: {error}")
                return
            self.runner = runner
            runner.paused = self.assignment.target_state == "PAUSED"
            run = asyncio.create_task(runner.run())
            await self.report("PAUSED" if runner.paused else "RUNNING")
            stop_wait = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({run, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if self.stopping.is_set():
                runner.stopping.set()
            stop_wait.cancel()
            try:
                await run
                return
            except asyncio.CancelledError:
                raise
            except TaskStoppingError:
                return
            except Exception as error:
                failure = error.error if isinstance(error, TaskFailedError) else error
                if isinstance(failure, client_errors.StaleTaskGenerationError):
                    # fenced: the task runs elsewhere now; stop without touching its status
                    self.fenced = True
                    return
                trace = "".join(traceback.format_exception(failure))
                config = runner.ctx.config
                shown = hide(normalise({k: v for k, v in config.items() if isinstance(v, str)}))
                for key, value in config.items():  # never a secret in a trace
                    if shown.get(key) == "[hidden]" and isinstance(value, str) and value:
                        trace = trace.replace(value, "[hidden]")
                log.error("task %s/%d failed: %s", *self.key, error)
                await self.report("FAILED", trace)
                limit = int(config.get("tasks.restart.max", 0))
                if self.stopping.is_set() or restarts >= limit:
                    await self.stopping.wait()
                    return
                backoff = int(config.get("tasks.restart.backoff.ms", 1000)) * (2**restarts) / 1000
                restarts += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), backoff)
                if self.stopping.is_set():
                    return
                await self.report("RESTARTING")

    async def stop(self) -> None:
        self.stopping.set()
        if self.runner is not None:
            self.runner.stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 30)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        except Exception as error:
            log.warning("task %s/%d stopped with %s", *self.key, error)


class Worker:
    """A connect worker; ``await worker.run()`` until ``await worker.stop()``."""

    def __init__(
        self,
        broker_url: str,
        *,
        worker_id: str | None = None,
        session_timeout_ms: int = 10_000,
        client: AsyncClient | None = None,
        **client_options: Any,
    ) -> None:
        self.broker_url = broker_url
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.session_timeout_ms = session_timeout_ms
        self.client = client or AsyncClient(broker_url, **client_options)
        self.tasks: dict[TaskKey, TaskHandle] = {}
        self._stopping = asyncio.Event() if _has_loop() else None
        self._background: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def request_stop(self) -> None:
        """Asks ``run`` to stop every task and leave (safe from a signal handler)."""
        if self._stopping is not None:
            self._stopping.set()

    def start_background(self) -> None:
        """Runs the worker in a task of the running loop (``tidelog serve --connect``)."""
        self._runner = asyncio.create_task(self.run(), name="tidelog-connect-worker")

    async def run(self) -> None:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        interval = 1.0
        last_ok = time.monotonic()
        log.info("connect worker %s talking to %s", self.worker_id, self.broker_url)
        while not self._stopping.is_set():
            running = sorted(k for k, h in self.tasks.items() if not h.task.done())
            sent = time.monotonic()
            try:
                answer = await self.client.call(
                    _rest.heartbeat(self.worker_id, running, self.session_timeout_ms), retries=0
                )
            except client_errors.TidelogError as error:
                # Stop before the brokers can give the tasks to another worker (the lease counts from
                # when they last heard of us, at the latest when the last good heartbeat was sent).
                if time.monotonic() - last_ok > 0.7 * self.session_timeout_ms / 1000 and self.tasks:
                    log.warning("lease of %s lost (%s): stopping every task", self.worker_id, error)
                    await self._stop_all()
            else:
                last_ok = sent
                interval = max(0.2, int(answer.get("heartbeat_interval_ms", 1000)) / 1000)
                await self._reconcile([Assignment.from_json(a) for a in answer.get("assignments", [])])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
        await self._stop_all()
        with contextlib.suppress(client_errors.TidelogError):
            await self.client.call(_rest.leave(self.worker_id), retries=1)

    async def _reconcile(self, assignments: list[Assignment]) -> None:
        wanted = {(a.connector, a.task): a for a in assignments}
        for key, handle in list(self.tasks.items()):
            target = wanted.get(key)
            if (
                target is None
                or target.generation != handle.assignment.generation
                or handle.fenced
                or (
                    target.restart_epoch != handle.assignment.restart_epoch
                    or (
                        handle.task.done() and (target.connector_config != handle.assignment.connector_config)
                    )
                )
            ):
                await handle.stop()
                del self.tasks[key]
        for key, assignment in wanted.items():
            current = self.tasks.get(key)
            if current is None:
                self.tasks[key] = TaskHandle(self, assignment)
            elif assignment.target_state != current.assignment.target_state:
                current.set_target(assignment.target_state)

    async def _stop_all(self) -> None:
        handles = list(self.tasks.values())
        self.tasks.clear()
        await asyncio.gather(*(h.stop() for h in handles), return_exceptions=True)

    async def stop(self) -> None:
        """Stops every task (storing their offsets), leaves, and closes the client."""
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner
        await self.client.aclose()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
