"""The data path of the broker: partition logs, produce, fetch, offsets, idempotent producers."""

from app.broker.broker import Acks, Broker, ProduceOutcome, RetentionStats
from app.broker.fetch import FetchResult
from app.broker.partitions import PartitionHandle, PartitionState

__all__ = [
    "Acks",
    "Broker",
    "FetchResult",
    "PartitionHandle",
    "PartitionState",
    "ProduceOutcome",
    "RetentionStats",
]
