"""A real broker on a small tmpfs fills it up: no acknowledged record is lost (issue 11, item 1).

``acks=all`` produce until the disk is full (507 50701 with ``Retry-After``, ``/readyz`` 503), free
space, produce more (writes resume by themselves), fetch, restart with SIGTERM and with SIGKILL:
every acknowledged record is there at its offset, offsets are dense and never reused. The data
directory and the SQLite catalog share the tmpfs. Mounting needs root; under ``CI=true`` a failed
mount fails the test instead of skipping it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.tmpfs import fill, mounted_tmpfs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DISK_SIZE = "8m"
FILLER_BYTES = 2 << 20  # freed to make room again
VALUE = "x" * 1000
MAX_REQUESTS = 3000  # bounds of the fill loop (8 MiB of 25 KiB requests is ~330)
FILL_BUDGET_S = 180.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", DISK_SIZE) as mount_point:
        yield mount_point


def _produce(http: httpx.Client, start: int, n: int = 25) -> httpx.Response:
    records = [{"value": f"{start + i}:{VALUE}"} for i in range(n)]
    return http.post(
        "/v1/topics/full/partitions/0/records", params={"acks": "all"}, json={"records": records}
    )


def _record_acks(answer: httpx.Response, acked: dict[int, str], sent: int) -> None:
    assert answer.status_code == 200, answer.text
    for i, result in enumerate(answer.json()["results"]):
        offset = result["offset"]
        assert offset not in acked, f"offset {offset} acknowledged twice"
        acked[offset] = f"{sent + i}:{VALUE}"


def _fetch_all(http: httpx.Client) -> dict[int, str]:
    out: dict[int, str] = {}
    offset = 0
    while True:
        answer = http.get(
            "/v1/topics/full/partitions/0/records",
            params={"offset": offset, "max_records": 5000, "max_wait_ms": 0},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        for record in body["records"]:
            out[record["offset"]] = record["value"]
        if body["next_offset"] >= body["high_watermark"]:
            assert not body["records"] or body["next_offset"] == body["high_watermark"]
            return out
        assert body["records"], f"an empty answer below the high watermark at {offset}: {body}"
        offset = body["next_offset"]


def _check(http: httpx.Client, acked: dict[int, str]) -> None:
    stored = _fetch_all(http)
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged records lost, first {missing[:5]}"
    for offset, value in acked.items():
        assert stored[offset] == value, f"offset {offset} holds another record"
    assert sorted(stored) == list(range(len(stored))), "offsets are not dense"


def _wait_ready(http: httpx.Client, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = http.get("/readyz")
        if answer.status_code == 200:
            return
        assert time.monotonic() < deadline, f"not ready after {timeout_s} s: {answer.text}"
        time.sleep(0.2)


def test_a_full_disk_loses_no_acknowledged_record(small_disk: Path, tmp_path: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * FILLER_BYTES)
    broker = BrokerProcess(small_disk / "data", settings={"log_segment_bytes": 256 * 1024})
    broker.log_path = tmp_path / "broker.log"  # not on the small disk
    broker.start()
    acked: dict[int, str] = {}
    sent = 0
    try:
        with broker.client(timeout=30) as http:
            created = http.post("/v1/topics", json={"name": "full", "partitions": 1})
            assert created.status_code == 201, created.text
            full: httpx.Response | None = None
            deadline = time.monotonic() + FILL_BUDGET_S
            for _ in range(MAX_REQUESTS):
                assert time.monotonic() < deadline, "the disk never filled up"
                answer = _produce(http, sent)
                if answer.status_code != 200:
                    full = answer
                    break
                _record_acks(answer, acked, sent)
                sent += 25
            assert full is not None, "the disk never filled up"
            assert full.status_code == 507, full.text
            assert full.headers["content-type"] == "application/problem+json"
            assert full.json()["error_code"] == 50701
            assert int(full.headers["retry-after"]) >= 1
            sent += 25
            # while full: every write is refused the same way, readiness says so, reads go on
            for _ in range(5):
                again = _produce(http, sent)
                assert again.status_code == 507, again.text
                sent += 25
            assert http.get("/readyz").status_code == 503
            _check(http, acked)

            filler.unlink()  # space returns
            _wait_ready(http)
            for _ in range(20):
                answer = _produce(http, sent)
                _record_acks(answer, acked, sent)
                sent += 25
            _check(http, acked)

        for kill in (False, True):  # SIGTERM, then SIGKILL
            broker.restart(kill=kill)
            with broker.client(timeout=30) as http:
                _check(http, acked)
                answer = _produce(http, sent)
                _record_acks(answer, acked, sent)
                assert min(r["offset"] for r in answer.json()["results"]) == len(acked) - 25
                sent += 25
                _check(http, acked)
    finally:
        if broker.running:
            broker.stop()
    assert "Traceback" not in broker.log_text(), broker.log_text()[-5000:]


def test_produce_answers_are_never_500_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    """Fill the disk with a file first, then try every kind of write a client can make."""
    broker = BrokerProcess(small_disk / "data")
    broker.log_path = tmp_path / "broker.log"
    broker.start()
    try:
        with broker.client(timeout=30) as http:
            assert http.post("/v1/topics", json={"name": "full", "partitions": 2}).status_code == 201
            fill(small_disk / "filler")
            answers: list[Any] = [
                _produce(http, 0),
                http.post(
                    "/v1/topics/full/records", params={"acks": "1"}, json={"records": [{"value": VALUE}] * 50}
                ),
                http.post("/v1/topics", json={"name": "another", "partitions": 4}),
                http.post("/v1/producers"),
            ]
            for answer in answers:
                assert answer.status_code < 500 or answer.status_code == 507, answer.text
                if answer.status_code == 507:
                    assert answer.json()["error_code"] == 50701
            assert any(a.status_code == 507 for a in answers)
            (small_disk / "filler").unlink()
            _wait_ready(http)
            assert _produce(http, 0).status_code == 200
    finally:
        if broker.running:
            broker.stop()
