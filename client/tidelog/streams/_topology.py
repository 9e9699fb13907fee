"""The topology: the graph the DSL builds, cut into sub-topologies, with its stores and topics.

A **sub-topology** is a connected part of the graph: nodes joined by parent-child edges or by a
store they share. Repartition topics cut the graph (a sink writes the topic, a source in another
sub-topology reads it), so each sub-topology reads its own set of topics, and a **task** is one
sub-topology on one partition number of those topics, which must therefore have equal partition
counts (co-partitioning). Internal topics are named ``<application-id>-<name>-repartition`` and
``<application-id>-<store>-changelog``, so one PREFIXED ACL on ``<application-id>-`` covers them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tidelog.streams._nodes import Node, SinkNode, SourceNode
from tidelog.streams._stores import KeyValueStore, Store, VersionedStore

__all__ = ["GlobalTableSpec", "StoreSpec", "SubTopology", "Topology", "TopologyError"]


class TopologyError(ValueError):
    """A topology that cannot run: a name used twice, inputs that are not co-partitioned, …"""


@dataclass(frozen=True, slots=True)
class StoreSpec:
    name: str
    kind: str = "kv"  # kv | versioned
    logged: bool = True
    history_retention: int = 86_400_000

    def create(self) -> Store:
        if self.kind == "versioned":
            return VersionedStore(self.name, history_retention=self.history_retention, logged=self.logged)
        return KeyValueStore(self.name, logged=self.logged)


@dataclass(frozen=True, slots=True)
class GlobalTableSpec:
    topic: str
    store: StoreSpec


@dataclass(slots=True)
class SubTopology:
    id: int
    sources: dict[str, SourceNode]
    nodes: list[Node]
    stores: list[StoreSpec]

    @property
    def source_topics(self) -> list[str]:
        return sorted(self.sources)

    @property
    def sink_topics(self) -> set[str]:
        return {n.topic for n in self.nodes if isinstance(n, SinkNode) and isinstance(n.topic, str)}


@dataclass(slots=True)
class Topology:
    """Everything the DSL built for one application."""

    application_id: str
    sources: dict[str, SourceNode] = field(default_factory=dict)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    repartition_topics: set[str] = field(default_factory=set)
    global_tables: dict[str, GlobalTableSpec] = field(default_factory=dict)
    global_nodes: dict[str, Node] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count())

    # -- building ---------------------------------------------------------------------------------

    def name(self, prefix: str) -> str:
        """A generated node or store name, numbered in build order as Kafka Streams numbers them."""
        return f"{prefix}-{next(self._counter):010d}"

    def source(
        self,
        topic: str,
        *,
        timestamp_extractor: Callable[[Any, Any, int], int] | None = None,
        internal: bool = False,
    ) -> SourceNode:
        if topic in self.global_tables:
            raise TopologyError(f"topic {topic!r} is already read as a global table")
        node = self.sources.get(topic)
        if node is None:
            node = SourceNode(
                self.name("KSTREAM-SOURCE"), topic, timestamp_extractor=timestamp_extractor, internal=internal
            )
            self.sources[topic] = node
        elif timestamp_extractor is not None and node.timestamp_extractor is not timestamp_extractor:
            raise TopologyError(f"topic {topic!r} is read twice with different timestamp extractors")
        return node

    def add_store(self, spec: StoreSpec) -> StoreSpec:
        if spec.name in self.stores:
            raise TopologyError(f"store name {spec.name!r} is used twice")
        self.stores[spec.name] = spec
        return spec

    def repartition_topic(self, name: str) -> str:
        topic = f"{self.application_id}-{name}-repartition"
        if topic in self.repartition_topics:
            raise TopologyError(f"repartition name {name!r} is used twice")
        self.repartition_topics.add(topic)
        return topic

    def changelog_topic(self, store: str) -> str:
        return f"{self.application_id}-{store}-changelog"

    # -- reading ----------------------------------------------------------------------------------

    def subtopologies(self) -> list[SubTopology]:
        """The connected parts of the graph, numbered by their first source in build order."""
        parent: dict[int, int] = {}
        nodes: dict[int, Node] = {}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def union(a: int, b: int) -> None:
            parent[find(a)] = find(b)

        store_owner: dict[str, int] = {}
        stack: list[Node] = list(self.sources.values())
        while stack:
            node = stack.pop()
            if id(node) in nodes:
                continue
            nodes[id(node)] = node
            parent[id(node)] = id(node)
            stack.extend(node.children)
        for node in nodes.values():
            for child in node.children:
                union(id(node), id(child))
            for store in node.stores:
                if store in store_owner:
                    union(id(node), store_owner[store])
                else:
                    store_owner[store] = id(node)
        groups: dict[int, list[Node]] = {}
        for node_id, node in nodes.items():
            groups.setdefault(find(node_id), []).append(node)
        order = {id(n): i for i, n in enumerate(self.sources.values())}
        result = []
        ranked = sorted(groups.values(), key=lambda g: min(order.get(id(n), 1 << 30) for n in g))
        for index, members in enumerate(ranked):
            sources = {n.topic: n for n in members if isinstance(n, SourceNode)}
            store_names = sorted({s for n in members for s in n.stores})
            missing = [s for s in store_names if s not in self.stores]
            if missing:
                raise TopologyError(f"stores {missing} are used but never added to the topology")
            result.append(SubTopology(index, sources, members, [self.stores[s] for s in store_names]))
        return result

    def describe(self) -> str:
        """A readable outline of the sub-topologies (like Kafka's ``Topology.describe()``)."""
        lines = []
        for sub in self.subtopologies():
            lines.append(f"Sub-topology {sub.id}: reads {', '.join(sub.source_topics)}")
            for store in sub.stores:
                lines.append(f"  store {store.name} ({store.kind}) -> {self.changelog_topic(store.name)}")
            for topic in sorted(sub.sink_topics):
                lines.append(f"  writes {topic}")
        for spec in self.global_tables.values():
            lines.append(f"Global table {spec.store.name}: reads {spec.topic}")
        return "\n".join(lines)
