"""tidelog through its HTTP API, the way a Python user calls it: httpx, orjson bodies, answers read back.

Every request's answer is checked (a benchmark must never count an error as throughput) and decoded, as a
user's code would decode it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from ._events import Throughput

_JSON = {"content-type": "application/json"}


class BenchError(RuntimeError):
    """A system under test answered something a user would treat as a failure."""


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300:
        raise BenchError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


class Tidelog:
    def __init__(self, url: str) -> None:
        self.url = url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60.0)

    def create_topic(self, name: str, partitions: int = 1, configs: dict[str, Any] | None = None) -> None:
        with self.client() as client:
            response = client.post(
                "/v1/topics",
                content=orjson.dumps(
                    {
                        "name": name,
                        "partitions": partitions,
                        "replication_factor": 1,
                        "configs": configs or {},
                    }
                ),
                headers=_JSON,
            )
            _check(response, f"create topic {name}")

    def delete_topic(self, name: str) -> None:
        with self.client() as client:
            response = client.delete(f"/v1/topics/{name}")
            if response.status_code not in (204, 404):
                _check(response, f"delete topic {name}")

    def high_watermark(self, topic: str, partition: int = 0) -> int:
        with self.client() as client:
            response = client.get(f"/v1/topics/{topic}/partitions/{partition}/offsets")
            _check(response, "offsets")
            value: int = orjson.loads(response.content)["high_watermark"]
            return value

    # -- produce ---------------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        batch: Sequence[dict[str, Any]],
        *,
        total: int,
        acks: str,
        time_cap_s: float,
        partitions: Sequence[int] = (0,),
        client: httpx.Client | None = None,
    ) -> Throughput:
        """Send ``total`` records in requests of ``len(batch)`` (or stop at the time cap); return the sent.

        Requests go round-robin over ``partitions`` through the partition endpoint.
        """
        own = client is None
        http = client or self.client()
        records = [{"value": value} for value in batch]
        value_bytes = sum(len(orjson.dumps(value)) for value in batch)
        params = {"acks": acks}
        paths = [f"/v1/topics/{topic}/partitions/{p}/records" for p in partitions]
        sent = 0
        sent_bytes = 0
        request_index = 0
        started = time.perf_counter()
        deadline = started + time_cap_s
        try:
            while sent < total and time.perf_counter() < deadline:
                body = orjson.dumps({"records": records})
                response = http.post(
                    paths[request_index % len(paths)], content=body, params=params, headers=_JSON
                )
                request_index += 1
                _check(response, "produce")
                if acks != "0":
                    answered = orjson.loads(response.content)["results"]
                    if len(answered) != len(records):
                        raise BenchError(f"produce acknowledged {len(answered)} of {len(records)} records")
                sent += len(records)
                sent_bytes += value_bytes
            return Throughput(sent, sent_bytes, time.perf_counter() - started)
        finally:
            if own:
                http.close()

    # -- consume ---------------------------------------------------------------------------------------

    def consume(
        self,
        topic: str,
        total: int,
        *,
        value_size: int,
        ndjson: bool,
        time_cap_s: float,
        max_records: int = 1000,
        partition: int = 0,
    ) -> Throughput:
        """Read ``total`` records from offset 0, ``max_records`` a fetch, values decoded to Python objects."""
        path = f"/v1/topics/{topic}/partitions/{partition}/records"
        headers = {"accept": "application/x-ndjson" if ndjson else "application/json"}
        offset = 0
        got = 0
        started = time.perf_counter()
        deadline = started + time_cap_s
        with self.client() as http:
            while got < total and time.perf_counter() < deadline:
                response = http.get(
                    path,
                    params={"offset": offset, "max_records": max_records, "max_wait_ms": 0},
                    headers=headers,
                )
                _check(response, "fetch")
                if ndjson:
                    records = [orjson.loads(line) for line in response.content.splitlines() if line]
                    if not records:
                        raise BenchError(f"fetch at offset {offset} returned no records")
                    offset = records[-1]["offset"] + 1
                else:
                    body = orjson.loads(response.content)
                    records = body["records"]
                    if not records:
                        raise BenchError(f"fetch at offset {offset} returned no records")
                    offset = body["next_offset"]
                got += len(records)
        return Throughput(got, got * value_size, time.perf_counter() - started)

    def fetch_latency_ms(self, http: httpx.Client, topic: str, offset: int, max_records: int = 10) -> float:
        """Time one fetch of ``max_records`` at ``offset``, answer decoded; milliseconds."""
        started = time.perf_counter()
        response = http.get(
            f"/v1/topics/{topic}/partitions/0/records",
            params={"offset": offset, "max_records": max_records, "max_wait_ms": 0},
        )
        _check(response, "fetch")
        records = orjson.loads(response.content)["records"]
        elapsed = (time.perf_counter() - started) * 1000.0
        if not records or records[0]["offset"] != offset:
            raise BenchError(f"fetch at {offset} did not start at {offset}")
        return elapsed
