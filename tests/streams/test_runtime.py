"""Applications against a real broker: WordCount, and the EOS-style crash test with SIGKILLed processors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import tidelog
import tidelog.streams as ts
from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        tmp_path_factory.mktemp("streams") / "data",
        settings={"group_min_session_timeout_ms": 500, "log_retention_check_interval_ms": 200},
    ).start()
    yield process
    if process.running:
        process.stop()


def read_all(client: tidelog.Client, topic: str) -> list[tidelog.Record]:
    records: list[tidelog.Record] = []
    for partition in range(client.admin.describe_topic(topic).partition_count):
        records += list(client.reader(topic, partition).read_to_end(timeout_ms=200))
    return records


def last_per_key(records: list[tidelog.Record]) -> dict[object, object]:
    return {r.key: r.value for r in sorted(records, key=lambda r: (r.partition, r.offset))}


def test_wordcount_through_a_real_broker(broker: BrokerProcess, tmp_path: Path) -> None:
    lines = ["hello kafka streams", "all streams lead to kafka", "join kafka summit"] * 20
    with tidelog.Client(broker.url) as client:
        client.admin.create_topic("text-input", 2)
        client.admin.create_topic("word-counts", 2)
        with client.producer() as producer:
            for i, line in enumerate(lines):
                producer.send("text-input", line, key=str(i))
        app = ts.App("wordcount", url=broker.url, state_dir=tmp_path, commit_interval_ms=100)
        (
            app.stream("text-input")
            .flat_map_values(lambda v: v.lower().split())
            .group_by(lambda key, word: word)
            .count(store="counts")
            .to_stream()
            .to("word-counts")
        )
        expected: dict[object, object] = {}
        for line in lines:
            for word in line.split():
                expected[word] = int(expected.get(word, 0)) + 1  # type: ignore[call-overload]
        runner = threading.Thread(target=app.run)
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and last_per_key(read_all(client, "word-counts")) != expected:
                time.sleep(0.3)
        finally:
            app.stop()
            runner.join(30)
        assert last_per_key(read_all(client, "word-counts")) == expected
        # Internal topics are named after the application, with Kafka's suffixes.
        names = {t.name for t in client.admin.list_topics()}
        assert {"wordcount-counts-repartition", "wordcount-counts-changelog"} <= names


def test_mismatched_partition_counts_are_refused_at_start(broker: BrokerProcess, tmp_path: Path) -> None:
    with tidelog.Client(broker.url) as client:
        client.admin.create_topic("left-3", 3)
        client.admin.create_topic("right-2", 2)
    app = ts.App("copart", url=broker.url, state_dir=tmp_path)
    app.stream("left-3").join(app.table("right-2"), lambda a, b: [a, b]).to("joined")
    with pytest.raises(ts.TopologyError, match="not co-partitioned"):
        app.run()


class Processor:
    """One ``eos_app`` process."""

    def __init__(self, url: str, state: Path, log: Path) -> None:
        self.url, self.state, self.log = url, state, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.streams.eos_app", self.url, str(self.state), "300"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.mark.slow
def test_state_survives_sigkilled_processors_exactly_once(broker: BrokerProcess, tmp_path: Path) -> None:
    """Three rounds of SIGKILL (one with the state directory deleted), then a clean stop.

    Final sums, maxima and counts (the counts behind a repartition topic) equal brute force, and each
    input partition's running sums, repeats collapsed by the input offset they came from, equal the
    in-order recomputation record by record.
    """
    rng = random.Random(11)
    inputs: list[tuple[str, int]] = []
    with tidelog.Client(broker.url) as client:
        for topic in ("data", "sum", "max", "cnt"):
            client.admin.create_topic(topic, 3)
        producer = client.producer()
        processors = [
            Processor(broker.url, tmp_path / f"state-{i}", tmp_path / f"proc-{i}.log") for i in range(2)
        ]
        for p in processors:
            p.start()

        def produce(n: int) -> None:
            for _ in range(n):
                key, value = f"k{rng.randrange(12)}", rng.randrange(-1000, 1000)
                inputs.append((key, value))
                producer.send("data", value, key=key)
                time.sleep(0.002)  # a steady stream, so that kills land in the middle of processing
            producer.flush()

        produce(300)
        for round_ in range(3):
            feeder = threading.Thread(target=produce, args=(600,))
            feeder.start()
            time.sleep(rng.uniform(0.8, 2.0))
            victim = processors[rng.randrange(2)]
            victim.kill()
            if round_ == 1:
                import shutil

                shutil.rmtree(victim.state, ignore_errors=True)  # restore from the changelog alone
            feeder.join()
            victim.start()
        produce(200)
        producer.close()

        sums: dict[str, int] = defaultdict(int)
        maxima: dict[str, int] = {}
        counts: dict[str, int] = defaultdict(int)
        for key, value in inputs:
            sums[key] += value
            maxima[key] = max(maxima.get(key, value), value)
            counts[f"r-{key}"] += 1
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (
                last_per_key(read_all(client, "sum")) == sums
                and last_per_key(read_all(client, "cnt")) == counts
                and last_per_key(read_all(client, "max")) == maxima
            ):
                break
            time.sleep(0.5)
        try:
            for p in processors:
                assert p.stop() == 0, p.log.read_text()[-3000:]
        finally:
            for p in processors:
                if p.proc is not None and p.proc.poll() is None:
                    p.proc.kill()
                    p.proc.wait(10)

        assert last_per_key(read_all(client, "sum")) == sums
        assert last_per_key(read_all(client, "max")) == maxima
        assert last_per_key(read_all(client, "cnt")) == counts

        # Collapse repeats by source offset: each input record's running sum, exactly once, in order.
        data = read_all(client, "data")
        outputs = read_all(client, "sum")
        by_source: dict[tuple[int, int], object] = {}
        repeats = 0
        for record in sorted(outputs, key=lambda r: (r.partition, r.offset)):
            src = dict(record.headers)["__streams.src"]
            assert isinstance(src, str)
            _, partition, offset, _seq = src.rsplit("|", 3)
            key = (int(partition), int(offset))
            if key in by_source:
                repeats += 1
                assert by_source[key] == record.value, "a repeat after a restart carries the same value"
            by_source[key] = record.value
        running: dict[str, int] = defaultdict(int)
        expected: dict[tuple[int, int], int] = {}
        for record in sorted(data, key=lambda r: (r.partition, r.offset)):
            running[record.key] += record.value
            expected[(record.partition, record.offset)] = running[record.key]
        assert by_source == expected
        print(f"inputs {len(inputs)}, sum outputs {len(outputs)}, repeats collapsed {repeats}")

        # The broker compacts the changelogs meanwhile (never past what the group committed): the
        # state above was restored from compacted changelogs.
        def compacted() -> bool:
            for store in ("sum", "max", "cnt"):
                records = read_all(client, f"eos-{store}-changelog")
                ends: dict[int, int] = defaultdict(int)
                for r in records:
                    ends[r.partition] = max(ends[r.partition], r.offset + 1)
                if len(records) < sum(ends.values()):
                    return True
            return False

        deadline = time.monotonic() + 15
        while not compacted() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert compacted(), "some changelog records were compacted away"
        # The repartition topic was trimmed below the committed offsets (DeleteRecords, KIP-811).
        starts = [p.log_start_offset for p in client.admin.describe_topic("eos-cnt-repartition").partitions]
        assert max(starts) > 0, starts
