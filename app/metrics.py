"""Prometheus metrics of one broker app, in a registry of its own (tests build many apps).

The data path increments ``produced_records``/``produced_bytes``/``fetched_records``/``fetched_bytes``
(label ``topic``); the request middleware observes ``requests``/``request_seconds`` by operation id; the
retention scheduler counts runs and deleted segments; partition sizes are collected from the Broker
at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics", "PartitionSize"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (topic, partition, size_bytes, segment_count, log_start_offset, log_end_offset)
PartitionSize = tuple[str, int, int, int, int, int]


class _PartitionCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[PartitionSize]]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size = GaugeMetricFamily("tidelog_partition_size_bytes", "Bytes on disk of a partition's log.",
                                 labels=["topic", "partition"])
        segments = GaugeMetricFamily("tidelog_partition_segments", "Segments of a partition's log.",
                                     labels=["topic", "partition"])
        start = GaugeMetricFamily("tidelog_partition_log_start_offset", "First offset of a partition's log.",
                                  labels=["topic", "partition"])
        end = GaugeMetricFamily("tidelog_partition_log_end_offset", "Next offset of a partition's log.",
                                labels=["topic", "partition"])
        try:
            rows = list(self._source())
        except Exception:  # a scrape during start-up or shutdown: report no partitions
            rows = []
        for topic, partition, size_bytes, segment_count, log_start, log_end in rows:
            labels = [topic, str(partition)]
            size.add_metric(labels, size_bytes)
            segments.add_metric(labels, segment_count)
            start.add_metric(labels, log_start)
            end.add_metric(labels, log_end)
        yield from (size, segments, start, end)


class Metrics:
    """The metrics of one app; ``render()`` gives the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tidelog_requests", "HTTP requests answered, by operation and status.",
                                ["operation", "method", "status"], registry=r)
        self.request_seconds = Histogram(
            "tidelog_request_duration_seconds", "Time to answer an HTTP request, by operation.",
            ["operation"], registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.inflight_requests = Gauge("tidelog_inflight_requests", "HTTP requests being served.", registry=r)
        self.parked_requests = Gauge(
            "tidelog_parked_requests", "Long polls waiting for data (max_parked_requests).", registry=r
        )
        self.sse_streams = Gauge("tidelog_sse_streams", "Open event streams (max_sse_streams).", registry=r)
        self.rejected_requests = Counter("tidelog_rejected_requests", "Requests refused by a limit.",
                                         ["reason"], registry=r)
        self.produced_records = Counter("tidelog_produced_records", "Records appended by produce.",
                                        ["topic"], registry=r)
        self.produced_bytes = Counter("tidelog_produced_bytes", "Record batch bytes appended by produce.",
                                      ["topic"], registry=r)
        self.fetched_records = Counter("tidelog_fetched_records", "Records returned by fetch.",
                                       ["topic"], registry=r)
        self.fetched_bytes = Counter("tidelog_fetched_bytes", "Record batch bytes read by fetch.",
                                     ["topic"], registry=r)
        self.retention_runs = Counter("tidelog_retention_runs", "Retention and compaction runs.",
                                      ["outcome"], registry=r)
        self.retention_segments_deleted = Counter(
            "tidelog_retention_segments_deleted", "Segments deleted by retention.", registry=r
        )
        self.compactions = Counter("tidelog_compactions", "Partitions compacted by the cleaner.", registry=r)
        self.retention_seconds = Histogram("tidelog_retention_duration_seconds",
                                           "Time of one retention and compaction run.", registry=r)
        self._partition_source: Callable[[], Iterable[PartitionSize]] | None = None
        self.registry.register(_PartitionCollector(self._partitions))

    def set_partition_source(self, source: Callable[[], Iterable[PartitionSize]] | None) -> None:
        """Where partition sizes come from at scrape time (the Broker, while it runs)."""
        self._partition_source = source

    def _partitions(self) -> Iterable[PartitionSize]:
        return self._partition_source() if self._partition_source is not None else ()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
