"""Workloads 6 and 7: the cost of one HTTP request, and one fetch for many partitions.

6. One request: ``wrk`` posts a single-record produce (acks=1, JSON, a 100-byte value) over many
   keep-alive connections, against the broker and, in the same run and interleaved, against a bare
   endpoint of the same server stack (uvicorn with httptools, FastAPI, a fixed answer:
   ``bench/suite/_bare.py``). The ratio is what the broker does per request on top of the
   framework's floor.
7. Many partitions: the Python client reads the same number of records from 8 partitions with
   ``fetch_many`` (one ``POST /v1/fetch`` per round) and from 1 partition with ``fetch``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from ._broker import free_port
from ._model import Results, Target
from ._runner import Contender, interleave
from ._scale import Scale
from ._tidelog import Tidelog
from ._wrk import run_wrk, wrk_available

ONE_REQUEST = "6. One request"
MANY_PARTITIONS = "7. Many partitions"
T_ONE = "tidelog produce, 1 record"
BARE = "bare endpoint (uvicorn + FastAPI)"
T_EIGHT = "tidelog fetch_many, 8 partitions"
T_SINGLE = "tidelog fetch, 1 partition"
CONNECTIONS = 32


def one_request_case() -> str:
    return f"wrk, 1 record of 100 B per request (JSON, acks=1), {CONNECTIONS} keep-alive connections"


def many_partitions_case(scale: Scale) -> str:
    return (
        f"{scale.records:,} records of {scale.value_size} B, Python client, "
        f"{scale.batch:,} per partition read"
    )


def targets(scale: Scale) -> list[Target]:
    rps = "requests/s"
    return [
        Target(
            "single-record produce ≥ 60% of the bare endpoint",
            (ONE_REQUEST, one_request_case(), T_ONE, rps),
            (ONE_REQUEST, one_request_case(), BARE, rps),
            0.6,
            True,
        ),
        Target(
            "a consumer of 8 partitions ≥ 90% of a consumer of 1",
            (MANY_PARTITIONS, many_partitions_case(scale), T_EIGHT, "records/s"),
            (MANY_PARTITIONS, many_partitions_case(scale), T_SINGLE, "records/s"),
            0.9,
            True,
        ),
    ]


class BareEndpoint:
    """``python -m bench.suite._bare`` on a free port, for the length of workload 6."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.suite._bare", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[2],
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{self.url}/v1/topics/x/records", content=b"{}").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the bare endpoint did not start: {self.log_path.read_text()[-500:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def run_one_request(
    results: Results, t: Tidelog, scale: Scale, workdir: Path, name: Callable[[str], str]
) -> None:
    why_not = wrk_available()
    if why_not is not None:
        results.skip(ONE_REQUEST, why_not)
        return
    case = one_request_case()
    topic = name("one-request")
    t.create_topic(topic, 1)
    body = orjson.dumps({"records": [{"value": "v" * 98}]})  # the JSON string value: 100 bytes
    bare = BareEndpoint(workdir / "bare.log")
    bare.start()
    try:

        def measure(url: str) -> Callable[[], float]:
            def run() -> float:
                result = run_wrk(url, body, workdir, seconds=scale.wrk_seconds, connections=CONNECTIONS)
                if result.non_2xx:
                    raise RuntimeError(f"wrk saw {result.non_2xx} non-2xx answers {result.errors}")
                return result.requests_per_s

            return run

        contenders = [
            Contender(
                results.figure(ONE_REQUEST, case, T_ONE, "requests/s"),
                measure(f"{t.url}/v1/topics/{topic}/records?acks=1"),
            ),
            Contender(
                results.figure(ONE_REQUEST, case, BARE, "requests/s"),
                measure(f"{bare.url}/v1/topics/{topic}/records?acks=1"),
            ),
        ]
        interleave(contenders, scale.repetitions, label="wrk ")
    finally:
        bare.stop()


def _fill(t: Tidelog, topic: str, partitions: int, total: int, scale: Scale) -> None:
    t.create_topic(topic, partitions)
    value = "v" * (scale.value_size - 2)
    per_partition = total // partitions
    with t.client() as client:
        for p in range(partitions):
            left = per_partition
            while left:
                n = min(scale.batch, left)
                answer = client.post(
                    f"/v1/topics/{topic}/partitions/{p}/records",
                    params={"acks": "1"},
                    content=orjson.dumps({"records": [{"value": value}] * n}),
                    headers={"content-type": "application/json"},
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"fill {topic}: HTTP {answer.status_code}: {answer.text[:200]}")
                left -= n


def run_many_partitions(results: Results, t: Tidelog, scale: Scale, name: Callable[[str], str]) -> None:
    from tidelog import Client, FetchResult

    case = many_partitions_case(scale)
    total = scale.records - scale.records % 8
    single, eight = name("read-one"), name("read-eight")
    _fill(t, single, 1, total, scale)
    _fill(t, eight, 8, total, scale)

    def read_single() -> float:
        with Client(t.url) as client:
            started = time.perf_counter()
            offset = seen = 0
            while seen < total:
                result = client.fetch(single, 0, offset, max_records=scale.batch)
                seen += len(result.records)
                offset = result.next_offset
                if time.perf_counter() - started > scale.time_cap_s:
                    break
            return seen / (time.perf_counter() - started)

    def read_eight() -> float:
        with Client(t.url) as client:
            started = time.perf_counter()
            offsets = {(eight, p): 0 for p in range(8)}
            seen = 0
            while seen < total:
                answers = client.fetch_many(offsets, max_records=scale.batch)
                for tp, result in answers.items():
                    if not isinstance(result, FetchResult):
                        raise RuntimeError(f"fetch_many {tp}: {result!r}")
                    seen += len(result.records)
                    offsets[(tp.topic, tp.partition)] = result.next_offset
                if time.perf_counter() - started > scale.time_cap_s:
                    break
            return seen / (time.perf_counter() - started)

    contenders = [
        Contender(results.figure(MANY_PARTITIONS, case, T_EIGHT, "records/s"), read_eight),
        Contender(results.figure(MANY_PARTITIONS, case, T_SINGLE, "records/s"), read_single),
    ]
    interleave(contenders, scale.repetitions, label="read ")
