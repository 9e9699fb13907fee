"""How big each workload is. `full` is what `make bench` runs; `smoke` is the test's few-second version.

The issue's sizes (1,000,000-record produces, a 10,000,000-record partition, memory up to 50,000,000
records) do not fit in 15 minutes on a shared 2-core machine next to two peers, so `full` scales them down;
docs/benchmarks.md states each reduction. Every loop is also capped in time, so a slow system shortens a
measurement (its rate is still measured) instead of stretching the run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    repetitions: int
    budget_s: float  # the suite skips the remaining workloads (with a reason) once past this
    # 1. produce and 2. consume: 100-byte values in batches
    records: int
    batch: int
    value_size: int
    time_cap_s: float
    # 1. large values against the disk
    large_records: int
    large_batch: int
    large_value_size: int
    dd_mb: int
    # 3. end-to-end latency
    latency_rate: int
    latency_count: int
    # 4. scaling
    partition_counts: tuple[int, ...]
    producer_counts: tuple[int, ...]
    scaling_records: int
    scaling_cap_s: float
    big_partition_records: int
    small_partition_records: int
    memory_checkpoints: int
    random_fetches: int
    segment_bytes: int
    # 5. server ceiling and the profile
    wrk_seconds: float
    profile_seconds: float


FULL = Scale(
    name="full",
    repetitions=3,
    budget_s=13 * 60,
    records=200_000,
    batch=1_000,
    value_size=100,
    time_cap_s=20.0,
    large_records=10_000,
    large_batch=100,
    large_value_size=10_240,
    dd_mb=256,
    latency_rate=1_000,
    latency_count=5_000,
    partition_counts=(1, 4, 16),
    producer_counts=(1, 2, 4),
    scaling_records=100_000,
    scaling_cap_s=3.0,
    big_partition_records=5_000_000,
    small_partition_records=10_000,
    memory_checkpoints=10,
    random_fetches=200,
    segment_bytes=16 * 1024 * 1024,
    wrk_seconds=6.0,
    profile_seconds=8.0,
)

SMOKE = Scale(
    name="smoke",
    repetitions=2,
    budget_s=240,
    records=3_000,
    batch=1_000,
    value_size=100,
    time_cap_s=10.0,
    large_records=100,
    large_batch=50,
    large_value_size=10_240,
    dd_mb=8,
    latency_rate=200,
    latency_count=100,
    partition_counts=(1, 4),
    producer_counts=(1, 2),
    scaling_records=2_000,
    scaling_cap_s=2.0,
    big_partition_records=20_000,
    small_partition_records=2_000,
    memory_checkpoints=2,
    random_fetches=20,
    segment_bytes=1024 * 1024,
    wrk_seconds=1.0,
    profile_seconds=1.0,
)

SCALES = {scale.name: scale for scale in (FULL, SMOKE)}
