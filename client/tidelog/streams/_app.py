"""``App``: a stream-processing application, its topology and how it runs.

>>> app = App("wordcount", url="http://127.0.0.1:8080")               # doctest: +SKIP
>>> (app.stream("text-input")
...     .flat_map_values(lambda v: v.lower().split())
...     .group_by(lambda key, word: word)
...     .count(store="counts")
...     .to_stream().to("word-counts"))
>>> app.run()

The application is a consumer group named by its id; every process that runs the same application
id shares its tasks. ``run`` blocks until ``stop()`` (or SIGINT/SIGTERM in the CLI);
``run_async`` runs the same loop in a worker thread for asyncio programs.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tidelog.streams._dsl import GlobalKTable, KStream, KTable
from tidelog.streams._nodes import PassNode
from tidelog.streams._stateful import TableSourceNode
from tidelog.streams._stores import Store
from tidelog.streams._task import ProcessingErrors
from tidelog.streams._topology import GlobalTableSpec, StoreSpec, Topology, TopologyError

__all__ = ["App"]

_APP_ID = re.compile(r"^[a-zA-Z0-9._-]{1,200}$")


class App:
    """A stream-processing application (see the module docstring).

    Settings, with Kafka Streams' names in brackets: ``commit_interval_ms`` (commit.interval.ms,
    30 s for at-least-once), ``max_task_idle_ms`` (max.task.idle.ms: how long a task with an empty
    input waits for it before processing the others, KIP-353), ``repartition_purge_interval_ms``
    (repartition.purge.interval.ms, KIP-811), ``state_dir`` (state.dir), ``processing_errors``
    (``fail`` | ``skip`` | ``dead-letter``, with ``dead_letter_topic``, default ``<id>-dlq``),
    ``replication_factor`` of the internal topics, ``changelog_configs`` for the changelog topics.
    """

    def __init__(
        self,
        application_id: str,
        url: str | None = None,
        *,
        client_options: dict[str, Any] | None = None,
        state_dir: str | Path | None = None,
        commit_interval_ms: int = 30_000,
        max_task_idle_ms: int = 0,
        repartition_purge_interval_ms: int = 30_000,
        processing_errors: ProcessingErrors = "fail",
        dead_letter_topic: str | None = None,
        replication_factor: int | None = None,
        session_timeout_ms: int = 10_000,
        poll_timeout_ms: int = 100,
        changelog_configs: dict[str, Any] | None = None,
    ) -> None:
        if not _APP_ID.match(application_id) or application_id in (".", ".."):
            raise ValueError(
                "application_id names the group and prefixes internal topics: letters, digits, '.', '_' "
                f"and '-', at most 200 characters; not {application_id!r}"
            )
        if processing_errors not in ("fail", "skip", "dead-letter"):
            raise ValueError("processing_errors must be fail, skip or dead-letter")
        self.application_id = application_id
        self.url = url
        self.client_options = dict(client_options or {})
        self.state_dir = Path(state_dir) if state_dir is not None else Path(".tidelog-streams")
        self.commit_interval_ms = commit_interval_ms
        self.max_task_idle_ms = max_task_idle_ms
        self.repartition_purge_interval_ms = repartition_purge_interval_ms
        self.processing_errors: ProcessingErrors = processing_errors
        self.dead_letter_topic = dead_letter_topic
        self.replication_factor = replication_factor
        self.session_timeout_ms = session_timeout_ms
        self.poll_timeout_ms = poll_timeout_ms
        #: extra topic configs of the changelog topics it creates (Kafka's ``topic.`` prefixed configs)
        self.changelog_configs = dict(changelog_configs or {})
        self.topology = Topology(application_id)
        #: the stores of global tables, shared by every task of this process
        self.global_stores: dict[str, Store] = {}
        self._stop = threading.Event()
        self._runtime: Any = None

    # -- building ---------------------------------------------------------------------------------

    def stream(
        self,
        topics: str | Sequence[str],
        *,
        timestamp_extractor: Callable[[Any, Any, int], int] | None = None,
    ) -> KStream:
        """A stream of one topic, or of several merged (they must be co-partitioned to join later)."""
        names = [topics] if isinstance(topics, str) else list(topics)
        if not names:
            raise TopologyError("stream() needs at least one topic")
        streams = [
            KStream(self.topology, self.topology.source(t, timestamp_extractor=timestamp_extractor))
            for t in names
        ]
        if len(streams) == 1:
            return streams[0]
        merged = PassNode(self.topology.name("KSTREAM-MERGE"))
        for s in streams:
            s._node.add_child(merged)
        return KStream(self.topology, merged)

    def table(self, topic: str, *, store: str | None = None) -> KTable:
        """A table of a topic: the latest value per key, versioned by timestamp for joins (KIP-889)."""
        name = store or self.topology.name(f"{topic}-STATE-STORE")
        self.topology.add_store(StoreSpec(name, kind="versioned"))
        source = self.topology.source(topic)
        node = TableSourceNode(self.topology.name("KTABLE-SOURCE"), name)
        source.add_child(node)
        return KTable(self.topology, node, name)

    def global_table(self, topic: str, *, store: str | None = None) -> GlobalKTable:
        """A table of every partition of ``topic``, kept whole in every process."""
        if topic in self.topology.sources:
            raise TopologyError(f"topic {topic!r} is already read as a stream or table")
        name = store or self.topology.name(f"{topic}-GLOBAL-STORE")
        spec = StoreSpec(name, kind="versioned", logged=False)
        self.topology.global_tables[topic] = GlobalTableSpec(topic, spec)
        return GlobalKTable(topic, name, self.global_stores)

    def describe(self) -> str:
        return self.topology.describe()

    # -- running ----------------------------------------------------------------------------------

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Process until ``stop()`` is called (or ``until()`` returns true), then commit and leave."""
        from tidelog.streams._runtime import Runtime

        if self.url is None:
            raise ValueError("App.run needs the broker's url")
        self._stop.clear()
        runtime = Runtime(self)
        self._runtime = runtime
        try:
            runtime.run(lambda: self._stop.is_set() or (until is not None and until()))
        finally:
            self._runtime = None

    async def run_async(self) -> None:
        """``run`` in a worker thread; cancelling the awaiting task stops the application."""
        try:
            await asyncio.to_thread(self.run)
        except asyncio.CancelledError:
            self.stop()
            raise

    def stop(self) -> None:
        self._stop.set()

    def metrics(self) -> dict[str, int]:
        """Counters of the running application (records processed, skipped, late, dropped, …)."""
        runtime = self._runtime
        return dict(runtime.metrics()) if runtime is not None else {}
