"""The five workloads of the comparative suite, run against one fresh broker process and the peers."""

from __future__ import annotations

import itertools
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import orjson

from . import _latency
from ._broker import BrokerProcess
from ._disk import dd_write_mb_per_s
from ._events import Throughput, batch_of
from ._latency import LatencyRun
from ._model import Figure, Results, Target, percentile
from ._nats import JetStream
from ._profile import profile_while
from ._redis import PrivateRedisServer, RedisStreams
from ._requests import MANY_PARTITIONS, ONE_REQUEST, run_many_partitions, run_one_request
from ._requests import targets as request_targets
from ._runner import Contender, interleave
from ._scale import Scale
from ._tidelog import Tidelog
from ._wrk import run_wrk, wrk_available

# Names used in the table, the charts and the targets.
T_ACKS1 = "tidelog acks=1"
T_ACKSALL = "tidelog acks=all"
REDIS = "Redis XADD (pipelined)"
REDIS_FSYNC = "Redis XADD (pipelined, fsync always)"
NATS = "JetStream publish_async"
T_JSON = "tidelog fetch JSON"
T_NDJSON = "tidelog fetch NDJSON"
REDIS_READ = "Redis XREAD COUNT 1000"
NATS_READ = "JetStream pull fetch(1000)"
T_SSE = "tidelog SSE"
T_LONGPOLL = "tidelog long-poll"
REDIS_BLOCK = "Redis XREAD BLOCK"
NATS_PUSH = "JetStream push consumer"
DD = "dd conv=fdatasync"

PRODUCE = "1. Produce"
CONSUME = "2. Consume"
LATENCY = "3. End-to-end latency"
SCALING = "4. Scaling"
CEILING = "5. Server ceiling"


class Suite:
    def __init__(
        self,
        scale: Scale,
        *,
        redis_url: str = "redis://127.0.0.1:6379/0",
        nats_url: str = "nats://127.0.0.1:4222",
        workdir: Path | None = None,
        only: set[str] | None = None,
        profile: bool = True,
    ) -> None:
        self.scale = scale
        self.redis_url = redis_url
        self.nats_url = nats_url
        self.only = only
        self.profile = profile
        self.results = Results(scale=scale.name)
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="tidelog-bench-"))
        self.broker: BrokerProcess | None = None
        self.tidelog: Tidelog | None = None
        self.redis: RedisStreams | None = None
        self.redis_fsync: RedisStreams | None = None
        self._redis_fsync_server: PrivateRedisServer | None = None
        self.nats: JetStream | None = None
        self._names = itertools.count(1)
        self._started = 0.0
        # Data left by the produce workload for the consume workload: system -> (where, records)
        self._produced: dict[str, tuple[str, int]] = {}

    # -- set-up ----------------------------------------------------------------------------------------

    def _name(self, stem: str) -> str:
        return f"{stem}-{next(self._names)}"

    def _connect_peers(self) -> None:
        redis = RedisStreams(self.redis_url)
        try:
            self.results.versions["Redis"] = redis.check()
            self.redis = redis
        except Exception as exc:
            redis.client.close()
            self.results.skip(f"Redis Streams at {self.redis_url}", f"does not answer: {exc!r}")
        server = PrivateRedisServer(self.workdir / "redis-fsync")
        try:
            server.start()
            self._redis_fsync_server = server
            fsync = RedisStreams(server.url)
            self.results.versions["Redis (acks=all counterpart)"] = fsync.check()
            self.redis_fsync = fsync
        except Exception as exc:
            server.stop()
            self.results.skip("Redis with appendfsync always (own redis-server)", f"could not start: {exc!r}")
        nats = JetStream(self.nats_url)
        try:
            self.results.versions["NATS"] = nats.connect()
            self.nats = nats
        except Exception as exc:
            nats.close()
            self.results.skip(f"NATS JetStream at {self.nats_url}", f"does not answer: {exc!r}")

    def _describe_machine(self) -> None:
        machine = self.results.machine
        machine["cores"] = str(os.cpu_count())
        try:
            with open("/proc/meminfo", encoding="ascii") as meminfo:
                total_kb = int(meminfo.readline().split()[1])
            machine["memory"] = f"{total_kb / 1024 / 1024:.1f} GiB"
        except OSError:
            machine["memory"] = "unknown"
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
                model = next(
                    (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
                )
            machine["cpu"] = model or platform.processor()
        except OSError:
            machine["cpu"] = platform.processor()
        machine["os"] = f"{platform.system()} {platform.release()}"
        machine["python"] = platform.python_version()
        for package in ("tidelog", "httpx", "orjson", "uvicorn", "fastapi", "redis", "nats-py"):
            try:
                self.results.versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                continue

    def _budget_left(self, workload: str) -> bool:
        if self.only is not None and workload.split(".")[0].lower() not in self.only:
            return False
        elapsed = time.monotonic() - self._started
        if elapsed > self.scale.budget_s:
            self.results.skip(workload, f"time budget of {self.scale.budget_s:.0f} s spent ({elapsed:.0f} s)")
            return False
        print(f"\n== {workload} ({elapsed:.0f} s in)", flush=True)
        return True

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> Results:
        self._started = time.monotonic()
        self._describe_machine()
        self._connect_peers()
        self.broker = BrokerProcess(self.workdir / "broker-data", log_path=self.workdir / "broker.log")
        try:
            self.broker.start()
            self.tidelog = Tidelog(self.broker.url)
            self._register_targets()
            plan: list[tuple[str, list[Callable[[], None]]]] = [
                (PRODUCE, [self.produce, self.produce_large]),
                (CONSUME, [self.consume]),
                (LATENCY, [self.latency]),
                (SCALING, [self.scaling, self.random_fetch_and_memory]),
                (CEILING, [self.ceiling]),
                (ONE_REQUEST, [self.one_request]),
                (MANY_PARTITIONS, [self.many_partitions]),
            ]
            if self.profile:
                plan.append(("Profile", [self.profile_broker]))
            for workload, parts in plan:
                if not self._budget_left(workload):
                    continue
                for part in parts:
                    try:
                        part()
                    except Exception as exc:  # one broken workload must not hide the others' figures
                        self.results.skip(f"{workload} ({part.__name__})", f"failed: {exc!r}"[:300])
        finally:
            if self.broker.killed_for_memory:
                self.results.notes.append(self.broker.killed_for_memory)
            self.results.machine["tidelog broker peak RSS in this run"] = (
                f"{self.broker.peak_rss_bytes / 1024**2:,.0f} MiB"
            )
            self.close()
        self.results.elapsed_s = time.monotonic() - self._started
        return self.results

    def close(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.redis_fsync is not None:
            self.redis_fsync.close()
            self.redis_fsync = None
        if self._redis_fsync_server is not None:
            self._redis_fsync_server.stop()
            self._redis_fsync_server = None
        if self.nats is not None:
            self.nats.close()
            self.nats = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _t(self) -> Tidelog:
        if self.tidelog is None:
            raise RuntimeError("broker not started")
        return self.tidelog

    def _register_targets(self) -> None:
        s = self.scale
        produce_case = f"{s.value_size} B values, batches of {s.batch:,}"
        consume_case = f"{s.value_size} B values, {s.batch:,} per read"
        latency_case = f"{s.latency_rate:,} records/s, one record per produce"
        rps = "records/s"
        self.results.targets = [
            Target(
                "produce ≥ 3\u00d7 Redis Streams",
                (PRODUCE, produce_case, T_ACKS1, rps),
                (PRODUCE, produce_case, REDIS, rps),
                3.0,
                True,
            ),
            Target(
                "produce ≥ 10\u00d7 JetStream",
                (PRODUCE, produce_case, T_ACKS1, rps),
                (PRODUCE, produce_case, NATS, rps),
                10.0,
                True,
            ),
            Target(
                "consume ≥ 3\u00d7 Redis XREAD",
                (CONSUME, consume_case, T_JSON, rps),
                (CONSUME, consume_case, REDIS_READ, rps),
                3.0,
                True,
            ),
            Target(
                "end-to-end p99 ≤ 10 ms through SSE",
                (LATENCY, latency_case, T_SSE, "p99 ms"),
                None,
                10.0,
                False,
            ),
            Target(
                "10 KB produce (acks=all) ≥ 50% of the disk's sequential write",
                (PRODUCE, self._large_case(), T_ACKSALL, "MB/s"),
                (PRODUCE, self._large_case(), DD, "MB/s"),
                0.5,
                True,
            ),
            Target(
                "random-offset fetch: big partition ≤ 1.2\u00d7 small",
                (SCALING, self._fetch_case(), "big", "ms p50"),
                (SCALING, self._fetch_case(), "small", "ms p50"),
                1.2,
                False,
            ),
            Target(
                "broker memory flat as data grows (last ≤ 1.2\u00d7 first)",
                (SCALING, "broker RSS as data grows", "last checkpoint", "MiB"),
                (SCALING, "broker RSS as data grows", "first checkpoint", "MiB"),
                1.2,
                False,
            ),
            *request_targets(s),
        ]

    # -- 6. one request, 7. many partitions (bench/suite/_requests.py) -------------------------------

    def one_request(self) -> None:
        run_one_request(self.results, self._t(), self.scale, self.workdir, self._name)

    def many_partitions(self) -> None:
        run_many_partitions(self.results, self._t(), self.scale, self._name)

    def _large_case(self) -> str:
        s = self.scale
        return f"{s.large_value_size // 1024} KB values, batches of {s.large_batch:,}"

    def _fetch_case(self) -> str:
        s = self.scale
        return (
            f"fetch of 10 records at a random offset: {s.big_partition_records:,} vs "
            f"{s.small_partition_records:,} records"
        )

    # -- 1. produce ------------------------------------------------------------------------------------

    def produce(self) -> None:
        s = self.scale
        t = self._t()
        case = f"{s.value_size} B values, batches of {s.batch:,}"
        batch = batch_of(s.batch, s.value_size)
        contenders: list[Contender] = []

        def record(system: str, where: str, result: Throughput) -> float:
            self._produced.setdefault(system, (where, result.records))
            return result.records_per_s

        def tidelog_side(acks: str, system: str) -> Callable[[], float]:
            def measure() -> float:
                topic = self._name(f"produce-acks{acks}")
                t.create_topic(topic, 1)
                return record(
                    system,
                    topic,
                    t.produce(topic, batch, total=s.records, acks=acks, time_cap_s=s.time_cap_s),
                )

            return measure

        for acks, system in (("1", T_ACKS1), ("all", T_ACKSALL)):
            contenders.append(
                Contender(self.results.figure(PRODUCE, case, system, "records/s"), tidelog_side(acks, system))
            )
        redis = self.redis
        if redis is not None:

            def redis_side() -> float:
                key = redis.key(self._name("produce"))
                return record(REDIS, key, redis.produce(key, batch, total=s.records, time_cap_s=s.time_cap_s))

            contenders.append(Contender(self.results.figure(PRODUCE, case, REDIS, "records/s"), redis_side))
        else:
            self.results.skip(f"{PRODUCE}: {REDIS}", "Redis does not answer")
        fsync = self.redis_fsync
        if fsync is not None:

            def redis_fsync_side() -> float:
                key = fsync.key(self._name("produce"))
                result = fsync.produce(key, batch, total=s.records, time_cap_s=s.time_cap_s)
                fsync.cleanup()  # its own server: keeps its append-only file small
                return result.records_per_s

            contenders.append(
                Contender(self.results.figure(PRODUCE, case, REDIS_FSYNC, "records/s"), redis_fsync_side)
            )
        nats = self.nats
        if nats is not None:

            def nats_side() -> float:
                subject = nats.stream(self._name("produce"))
                return record(
                    NATS, subject, nats.produce(subject, batch, total=s.records, time_cap_s=s.time_cap_s)
                )

            contenders.append(Contender(self.results.figure(PRODUCE, case, NATS, "records/s"), nats_side))
        else:
            self.results.skip(f"{PRODUCE}: {NATS}", "NATS does not answer")
        interleave(contenders, s.repetitions, label="produce ")

    def produce_large(self) -> None:
        """10 KB values as MB/s, interleaved with dd's figure for the same disk."""
        s = self.scale
        t = self._t()
        case = self._large_case()
        batch = batch_of(s.large_batch, s.large_value_size)
        broker_dir = self.workdir / "broker-data"

        def tidelog_side(acks: str) -> Callable[[], float]:
            def measure() -> float:
                topic = self._name(f"large-acks{acks}")
                t.create_topic(topic, 1)
                result = t.produce(topic, batch, total=s.large_records, acks=acks, time_cap_s=s.time_cap_s)
                t.delete_topic(topic)  # keeps the disk from filling over the repetitions
                return result.mb_per_s

            return measure

        contenders = [
            Contender(self.results.figure(PRODUCE, case, T_ACKSALL, "MB/s"), tidelog_side("all")),
            Contender(self.results.figure(PRODUCE, case, T_ACKS1, "MB/s"), tidelog_side("1")),
            Contender(
                self.results.figure(
                    PRODUCE, case, DD, "MB/s", note=f"{s.dd_mb} MiB, bs=1M, in the broker's data directory"
                ),
                lambda: dd_write_mb_per_s(broker_dir, s.dd_mb),
            ),
        ]
        interleave(contenders, s.repetitions, label="large ")
        dd = self.results.figures.get((PRODUCE, case, DD, "MB/s"))
        if dd is not None and dd.samples:
            self.results.machine["disk (dd conv=fdatasync)"] = (
                f"{dd.summary.median:,.0f} MB/s sequential write"
            )

    # -- 2. consume ------------------------------------------------------------------------------------

    def consume(self) -> None:
        s = self.scale
        t = self._t()
        case = f"{s.value_size} B values, {s.batch:,} per read"
        contenders: list[Contender] = []
        if T_ACKS1 in self._produced:
            topic, available = self._produced[T_ACKS1]
            total = min(available, s.records)

            def tidelog_side(ndjson: bool) -> Callable[[], float]:
                return lambda: (
                    t.consume(
                        topic,
                        total,
                        value_size=s.value_size,
                        ndjson=ndjson,
                        max_records=s.batch,
                        time_cap_s=s.time_cap_s,
                    ).records_per_s
                )

            contenders.append(
                Contender(self.results.figure(CONSUME, case, T_JSON, "records/s"), tidelog_side(False))
            )
            contenders.append(
                Contender(self.results.figure(CONSUME, case, T_NDJSON, "records/s"), tidelog_side(True))
            )
        else:
            self.results.skip(f"{CONSUME}: tidelog", "the produce workload left no tidelog data")
        redis = self.redis
        if redis is not None and REDIS in self._produced:
            key, available = self._produced[REDIS]
            contenders.append(
                Contender(
                    self.results.figure(CONSUME, case, REDIS_READ, "records/s"),
                    lambda: (
                        redis.consume(
                            key,
                            min(available, s.records),
                            value_size=s.value_size,
                            count=s.batch,
                            time_cap_s=s.time_cap_s,
                        ).records_per_s
                    ),
                )
            )
        elif redis is not None:
            self.results.skip(f"{CONSUME}: {REDIS_READ}", "the produce workload left no Redis data")
        nats = self.nats
        if nats is not None and NATS in self._produced:
            subject, available = self._produced[NATS]
            contenders.append(
                Contender(
                    self.results.figure(CONSUME, case, NATS_READ, "records/s"),
                    lambda: (
                        nats.consume(
                            subject,
                            min(available, s.records),
                            value_size=s.value_size,
                            count=s.batch,
                            time_cap_s=s.time_cap_s,
                        ).records_per_s
                    ),
                )
            )
        elif nats is not None:
            self.results.skip(f"{CONSUME}: {NATS_READ}", "the produce workload left no JetStream data")
        interleave(contenders, s.repetitions, label="consume ")

    # -- 3. latency ------------------------------------------------------------------------------------

    def latency(self) -> None:
        s = self.scale
        t = self._t()
        case = f"{s.latency_rate:,} records/s, one record per produce"
        cap = s.latency_count / s.latency_rate * 2 + 10
        runs: list[tuple[str, Callable[[], LatencyRun]]] = []

        def tidelog_run(kind: Callable[..., LatencyRun]) -> Callable[[], LatencyRun]:
            def run() -> LatencyRun:
                topic = self._name("latency")
                t.create_topic(topic, 1)
                return kind(
                    t, topic, rate=s.latency_rate, count=s.latency_count, size=s.value_size, time_cap_s=cap
                )

            return run

        runs.append((T_SSE, tidelog_run(_latency.tidelog_sse)))
        runs.append((T_LONGPOLL, tidelog_run(_latency.tidelog_long_poll)))
        redis = self.redis
        if redis is not None:
            runs.append(
                (
                    REDIS_BLOCK,
                    lambda: _latency.redis_xread_block(
                        self.redis_url,
                        redis.key(self._name("latency")),
                        rate=s.latency_rate,
                        count=s.latency_count,
                        size=s.value_size,
                        time_cap_s=cap,
                    ),
                )
            )
        else:
            self.results.skip(f"{LATENCY}: {REDIS_BLOCK}", "Redis does not answer")
        nats = self.nats
        if nats is not None:
            runs.append(
                (
                    NATS_PUSH,
                    lambda: nats.latency(
                        nats.stream(self._name("latency")),
                        rate=s.latency_rate,
                        count=s.latency_count,
                        size=s.value_size,
                        time_cap_s=cap,
                    ),
                )
            )
        else:
            self.results.skip(f"{LATENCY}: {NATS_PUSH}", "NATS does not answer")

        # One contender per system measures all three percentiles; p50 is its sample, p99 and p99.9 are
        # filed beside it from the same run.
        contenders: list[Contender] = []
        for system, run in runs:
            p50 = self.results.figure(LATENCY, case, system, "p50 ms", higher_is_better=False)
            p99 = self.results.figure(LATENCY, case, system, "p99 ms", higher_is_better=False)
            p999 = self.results.figure(LATENCY, case, system, "p99.9 ms", higher_is_better=False)
            ack99 = self.results.figure(
                LATENCY, case, system, "ack p99 ms", higher_is_better=False,
                note="produce call to its acknowledgement (the first half of the end-to-end figure)",
            )  # fmt: skip

            achieved: list[float] = []

            def measure(
                run: Callable[[], LatencyRun] = run,
                p50: Figure = p50,
                p99: Figure = p99,
                p999: Figure = p999,
                ack99: Figure = ack99,
                achieved: list[float] = achieved,
            ) -> float:
                result = run()
                if result.acks_ms:
                    ack99.samples.append(percentile(result.acks_ms, 99))
                p99.samples.append(percentile(result.latencies_ms, 99))
                p999.samples.append(percentile(result.latencies_ms, 99.9))
                achieved.append(result.achieved_rate)
                p50.note = (
                    f"{min(achieved):,.0f}\u2013{max(achieved):,.0f} records/s achieved, "
                    f"{_latency.PRODUCER_WORKERS} concurrent producers"
                )
                return percentile(result.latencies_ms, 50)

            contenders.append(Contender(p50, measure))
        interleave(contenders, s.repetitions, label="latency ")

    # -- 4. scaling ------------------------------------------------------------------------------------

    def scaling(self) -> None:
        s = self.scale
        t = self._t()
        batch = batch_of(s.batch, s.value_size)
        contenders: list[Contender] = []
        for partitions, producers in itertools.product(s.partition_counts, s.producer_counts):
            topic = self._name(f"scaling-p{partitions}")
            t.create_topic(topic, partitions)
            case = f"{partitions} partition{'s' if partitions > 1 else ''}, acks=1"
            figure = self.results.figure(
                SCALING, case, f"{producers} producer{'s' if producers > 1 else ''}", "records/s"
            )

            def measure(
                topic: str = topic, partitions: int = partitions, producers: int = producers
            ) -> float:
                return self._concurrent_produce(topic, partitions, producers, batch)

            contenders.append(Contender(figure, measure))
        interleave(contenders, s.repetitions, label="scaling ")
        for partitions in s.partition_counts:
            case = f"{partitions} partition{'s' if partitions > 1 else ''}, acks=1"
            points = []
            for producers in s.producer_counts:
                found = self.results.figures.get(
                    (SCALING, case, f"{producers} producer{'s' if producers > 1 else ''}", "records/s")
                )
                if found is not None and found.samples:
                    points.append((float(producers), found.summary.median))
            self.results.series[f"scaling:{partitions}"] = points

    def _concurrent_produce(
        self, topic: str, partitions: int, producers: int, batch: list[dict[str, str]]
    ) -> float:
        s = self.scale
        t = self._t()
        per_producer = max(s.batch, s.scaling_records // producers)
        results: list[Throughput] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(producers + 1)

        def producer(index: int) -> None:
            if partitions >= producers:
                own = [p for p in range(partitions) if p % producers == index]
            else:
                own = [index % partitions]
            try:
                with t.client() as http:
                    barrier.wait(timeout=30)
                    results.append(
                        t.produce(
                            topic,
                            batch,
                            total=per_producer,
                            acks="1",
                            time_cap_s=s.scaling_cap_s,
                            partitions=own,
                            client=http,
                        )
                    )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=producer, args=(i,), daemon=True) for i in range(producers)]
        for thread in threads:
            thread.start()
        barrier.wait(timeout=30)
        started = time.perf_counter()
        for thread in threads:
            thread.join(timeout=s.scaling_cap_s + 120)
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        return sum(r.records for r in results) / elapsed

    def random_fetch_and_memory(self) -> None:
        """Grow a partition while sampling broker RSS; then time random-offset fetches, big vs small."""
        s = self.scale
        t = self._t()
        broker = self.broker
        assert broker is not None
        configs = {"segment.bytes": s.segment_bytes}
        big, small = self._name("big"), self._name("small")
        t.create_topic(big, 1, configs)
        t.create_topic(small, 1, configs)
        batch = batch_of(s.batch, s.value_size)
        t.produce(small, batch, total=s.small_partition_records, acks="1", time_cap_s=120)
        step = max(s.batch, s.big_partition_records // s.memory_checkpoints)
        memory: list[tuple[float, float]] = []
        stored = 0
        growth_deadline = time.monotonic() + max(60.0, s.budget_s / 5)
        with t.client() as http:
            while stored < s.big_partition_records and time.monotonic() < growth_deadline:
                left = max(1.0, growth_deadline - time.monotonic())
                result = t.produce(big, batch, total=step, acks="1", time_cap_s=left, client=http)
                stored += result.records
                rss = broker.rss_bytes() / 1024 / 1024
                memory.append((float(stored), rss))
                print(f"  memory: {stored:,} records stored, broker RSS {rss:,.0f} MiB", flush=True)
        if stored < s.big_partition_records:
            self.results.notes.append(
                f"The big partition reached {stored:,} of {s.big_partition_records:,} records within its "
                "time cap."
            )
        self.results.series["memory"] = memory
        if memory:
            case = "broker RSS as data grows"
            first = self.results.figure(
                SCALING,
                case,
                "first checkpoint",
                "MiB",
                higher_is_better=False,
                note=f"after {int(memory[0][0]):,} records",
            )
            last = self.results.figure(
                SCALING,
                case,
                "last checkpoint",
                "MiB",
                higher_is_better=False,
                note=f"after {int(memory[-1][0]):,} records",
            )
            first.samples.append(memory[0][1])
            last.samples.append(memory[-1][1])

        case = self._fetch_case()
        big_high = t.high_watermark(big)
        small_high = t.high_watermark(small)
        rng = random.Random(6)
        big_figure = self.results.figure(
            SCALING,
            case,
            "big",
            "ms p50",
            higher_is_better=False,
            note=f"{big_high:,} records, segment.bytes={s.segment_bytes:,}",
        )
        small_figure = self.results.figure(
            SCALING, case, "small", "ms p50", higher_is_better=False, note=f"{small_high:,} records"
        )
        with t.client() as http:
            for _ in range(s.repetitions):
                big_samples: list[float] = []
                small_samples: list[float] = []
                for _ in range(s.random_fetches):  # interleaved sample by sample
                    big_samples.append(t.fetch_latency_ms(http, big, rng.randrange(0, max(1, big_high - 10))))
                    small_samples.append(
                        t.fetch_latency_ms(http, small, rng.randrange(0, max(1, small_high - 10)))
                    )
                big_figure.samples.append(percentile(big_samples, 50))
                small_figure.samples.append(percentile(small_samples, 50))
                print(
                    f"  random fetch p50: big {big_figure.samples[-1]:.2f} ms, small "
                    f"{small_figure.samples[-1]:.2f} ms",
                    flush=True,
                )

    # -- 5. server ceiling -----------------------------------------------------------------------------

    def ceiling(self) -> None:
        s = self.scale
        t = self._t()
        why_not = wrk_available()
        if why_not is not None:
            self.results.skip(CEILING, why_not)
            return
        case = f"wrk, prepared body of {s.batch:,} \u00d7 {s.value_size} B records, 4 connections"
        body = orjson.dumps({"records": [{"value": value} for value in batch_of(s.batch, s.value_size)]})
        contenders = []
        for acks, system in (("1", T_ACKS1), ("all", T_ACKSALL)):
            topic = self._name(f"wrk-acks{acks}")
            t.create_topic(topic, 1)
            url = f"{t.url}/v1/topics/{topic}/partitions/0/records?acks={acks}"

            def measure(url: str = url) -> float:
                result = run_wrk(url, body, self.workdir, seconds=s.wrk_seconds)
                if result.non_2xx:
                    raise RuntimeError(f"wrk saw {result.non_2xx} non-2xx answers {result.errors}")
                return result.requests_per_s * s.batch

            contenders.append(Contender(self.results.figure(CEILING, case, system, "records/s"), measure))

        # Large values against the disk, without the Python client's cost: server MB/s next to dd's.
        large_case = (
            f"wrk, prepared body of {s.large_batch:,} \u00d7 {s.large_value_size // 1024} KB records, "
            "4 connections"
        )
        large_body = orjson.dumps(
            {"records": [{"value": value} for value in batch_of(s.large_batch, s.large_value_size)]}
        )
        large_value_bytes = s.large_batch * s.large_value_size

        def measure_large() -> float:
            topic = self._name("wrk-large")
            t.create_topic(topic, 1)
            try:
                url = f"{t.url}/v1/topics/{topic}/partitions/0/records?acks=all"
                result = run_wrk(url, large_body, self.workdir, seconds=s.wrk_seconds)
                if result.non_2xx:
                    raise RuntimeError(f"wrk saw {result.non_2xx} non-2xx answers {result.errors}")
                return result.requests_per_s * large_value_bytes / 1e6
            finally:
                t.delete_topic(topic)  # keeps the disk from filling over the repetitions

        broker_dir = self.workdir / "broker-data"
        large_figure = self.results.figure(CEILING, large_case, T_ACKSALL, "MB/s")
        contenders.append(Contender(large_figure, measure_large))
        contenders.append(
            Contender(
                self.results.figure(CEILING, large_case, DD, "MB/s", note=f"{s.dd_mb} MiB, bs=1M"),
                lambda: dd_write_mb_per_s(broker_dir, s.dd_mb),
            )
        )
        interleave(contenders, s.repetitions, label="wrk ")
        produce_case = f"{s.value_size} B values, batches of {s.batch:,}"
        for system in (T_ACKS1, T_ACKSALL):
            server = self.results.figures.get((CEILING, case, system, "records/s"))
            client = self.results.figures.get((PRODUCE, produce_case, system, "records/s"))
            if server and server.samples and client and client.samples and client.summary.median > 0:
                share = server.summary.median / client.summary.median
                server.note = (
                    f"{share:.2f}\u00d7 the one-connection Python client of workload 1 "
                    f"({client.summary.median:,.0f} records/s)"
                )

    # -- where the time goes ---------------------------------------------------------------------------

    def profile_broker(self) -> None:
        s = self.scale
        t = self._t()
        broker = self.broker
        assert broker is not None
        batch = batch_of(s.batch, s.value_size)
        topic = self._name("profile")
        t.create_topic(topic, 1)
        loads: list[tuple[str, Callable[[], object]]] = [
            (
                "produce (acks=1, Python client)",
                lambda: t.produce(topic, batch, total=10**9, acks="1", time_cap_s=s.profile_seconds),
            ),
            ("fetch (JSON, Python client)", lambda: self._fetch_loop(topic)),
            (
                f"produce of {s.large_value_size // 1024} KB values (acks=all, Python client)",
                lambda: self._large_load(),
            ),
            (
                f"single-record produce at {s.latency_rate:,}/s with an SSE subscriber (workload 3)",
                lambda: self._latency_load(),
            ),
        ]
        for index, (name, load) in enumerate(loads):
            try:
                hottest, own = profile_while(broker.pid, s.profile_seconds, self.workdir, f"p{index}", load)
            except Exception as exc:
                self.results.skip(f"Profile of {name}", f"py-spy could not sample the broker: {exc}")
                continue
            self.results.profiles[f"{name}: most time by itself"] = hottest
            self.results.profiles[f"{name}: tidelog's own functions (app/, storage/)"] = own

    def _large_load(self) -> None:
        s = self.scale
        t = self._t()
        topic = self._name("profile-large")
        t.create_topic(topic, 1)
        batch = batch_of(s.large_batch, s.large_value_size)
        t.produce(topic, batch, total=10**9, acks="all", time_cap_s=s.profile_seconds)
        t.delete_topic(topic)

    def _latency_load(self) -> None:
        s = self.scale
        t = self._t()
        topic = self._name("profile-latency")
        t.create_topic(topic, 1)
        count = int(s.latency_rate * s.profile_seconds)
        _latency.tidelog_sse(
            t, topic, rate=s.latency_rate, count=count, size=s.value_size, time_cap_s=s.profile_seconds
        )

    def _fetch_loop(self, topic: str) -> None:
        s = self.scale
        t = self._t()
        high = t.high_watermark(topic)
        deadline = time.monotonic() + s.profile_seconds
        while time.monotonic() < deadline:
            t.consume(
                topic,
                high,
                value_size=s.value_size,
                ndjson=False,
                max_records=s.batch,
                time_cap_s=max(0.1, deadline - time.monotonic()),
            )


def python_version() -> str:
    return sys.version.split()[0]
