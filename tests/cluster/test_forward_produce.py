"""A topic-level produce sent to one broker of three: records of partitions led elsewhere are
forwarded to their leaders (app/cluster/forward.py), and the answer keeps request order.

Phase one: every keyed record lands on the partition murmur2 picks, exactly once, with its key,
value (in its format), headers and timestamp, at the offset the answer gave. Phase two: the leader
of one partition is SIGKILLed and the same broker is sent records for every partition before
leadership moves: that partition's records fail with a retriable 50304, the others are appended.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest

from app.broker.partitioner import partition_for_key
from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

PARTITIONS = 3
TOPIC = "forwarded"


def _topic_with_spread_leaders(cluster: Cluster) -> dict[int, int]:
    """A 3-partition rf=3 topic whose partitions' leaders are three different brokers, every
    broker serving its part of it."""
    created = cluster.create_topic(TOPIC, partitions=PARTITIONS, replication_factor=3, min_insync_replicas=2)
    assert created.status_code == 201, created.text
    leaders = {
        p: int(
            cluster.wait_partition(
                TOPIC, p, lambda s: s["leader"] is not None and sorted(s["isr"]) == [0, 1, 2]
            )["leader"]
        )
        for p in range(PARTITIONS)
    }
    assert sorted(leaders.values()) == [0, 1, 2], leaders
    # Each broker takes up its part a moment after the catalog names it: wait until every replica
    # answers a read itself (no redirect).
    deadline = time.monotonic() + 15
    for p in range(PARTITIONS):
        for broker in cluster.brokers:
            while True:
                answer = cluster.http.get(
                    f"{cluster.url(broker)}/v1/topics/{TOPIC}/partitions/{p}/records",
                    params={"offset": 0, "max_wait_ms": 0, "replica": "any"},
                )
                if answer.status_code == 200:
                    break
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.05)
    return leaders


def _fetch(
    cluster: Cluster, broker: int, partition: int, *, at_least: int, header_format: str = "string"
) -> list[dict[str, Any]]:
    """The partition's records read from ``broker``, once at least ``at_least`` are visible.

    Reads stop at the high watermark, which an ``acks=1`` answer does not wait for: the followers
    may not have fetched the batch yet. More records than expected are returned as they are, so
    a duplicate still fails the caller's count.
    """
    deadline = time.monotonic() + 10
    while True:
        answer = cluster.http.get(
            f"{cluster.url(broker)}/v1/topics/{TOPIC}/partitions/{partition}/records",
            params={"offset": 0, "max_records": 1000, "max_wait_ms": 0, "header_format": header_format,
                    "replica": "any"},
        )
        assert answer.status_code == 200, answer.text
        records: list[dict[str, Any]] = answer.json()["records"]
        if len(records) >= at_least or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _records(prefix: str, count: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [
        {"key": f"{prefix}-{i}", "value": {"i": i, "text": f"café {prefix} {i}"}} for i in range(count)
    ]
    records[3]["headers"] = [{"key": "trace", "value": "t-3"}, {"key": "empty", "value": None}]
    records[5]["timestamp"] = 1_700_000_000_000
    records[7]["partition"] = 2  # explicit partition wins over the key
    records[8]["key"] = None  # sticky partitioner
    return records


def _expected_partition(record: dict[str, Any]) -> int | None:
    if "partition" in record:
        return int(record["partition"])
    if record["key"] is None:
        return None
    return partition_for_key(str(record["key"]).encode(), PARTITIONS)


def _check_stored(stored: dict[str, Any], sent: dict[str, Any], timestamp: int) -> None:
    assert stored["key"] == sent["key"]
    assert stored["value"] == sent["value"]  # JSON value, rendered back as JSON
    assert stored["timestamp"] == timestamp
    assert stored["headers"] == sent.get("headers", [])
    if "timestamp" in sent:
        assert stored["timestamp"] == sent["timestamp"]


def test_topic_produce_through_one_broker_is_forwarded_to_each_leader(cluster: Cluster) -> None:
    leaders = _topic_with_spread_leaders(cluster)
    via = leaders[0]  # leads partition 0 itself, forwards partitions 1 and 2
    url = f"{cluster.url(via)}/v1/topics/{TOPIC}/records"

    # -- phase one: every record lands once, on its partition, in request order -----------------
    sent = _records("a", 40)
    answer = cluster.http.post(url, params={"acks": "all"}, json={"records": sent})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(sent)
    by_partition: dict[int, list[tuple[int, dict[str, Any], int]]] = {p: [] for p in range(PARTITIONS)}
    for record, result in zip(sent, results, strict=True):
        assert "error_code" not in result, result
        expected = _expected_partition(record)
        if expected is not None:
            assert result["partition"] == expected, (record, result)
        by_partition[result["partition"]].append((result["offset"], record, result["timestamp"]))
    assert all(by_partition[p] for p in range(PARTITIONS)), "keys should cover every partition"
    for p, entries in by_partition.items():
        # A fresh topic: request order is offset order, 0, 1, 2, … on each partition.
        assert [offset for offset, _, _ in entries] == list(range(len(entries))), (p, entries)
        stored = _fetch(cluster, leaders[p], p, at_least=len(entries))
        assert len(stored) == len(entries), (p, stored)  # exactly once
        for (offset, record, timestamp), found in zip(entries, stored, strict=True):
            assert found["offset"] == offset
            _check_stored(found, record, timestamp)

    # Other formats travel as they were produced: json keys, binary values and header values.
    binary = [
        {
            "key": {"k": i},
            "value": base64.b64encode(bytes([i, 0, 255, i])).decode(),
            "headers": [{"key": "raw", "value": base64.b64encode(b"\x00\xff").decode()}],
        }
        for i in range(12)
    ]
    answer = cluster.http.post(
        url,
        params={"acks": "1"},
        json={"records": binary, "key_format": "json", "value_format": "binary", "header_format": "binary"},
    )
    assert answer.status_code == 200, answer.text
    binary_results = answer.json()["results"]
    assert {r["partition"] for r in binary_results} == set(range(PARTITIONS))
    for p in range(PARTITIONS):
        mine = [(r, rec) for r, rec in zip(binary_results, binary, strict=True) if r["partition"] == p]
        expected_count = len(by_partition[p]) + len(mine)
        stored = {
            r["offset"]: r
            for r in _fetch(cluster, leaders[p], p, at_least=expected_count, header_format="binary")
        }
        assert len(stored) == len(by_partition[p]) + len(mine)
        for result, record in mine:
            assert result["partition"] == partition_for_key(orjson.dumps(record["key"]), PARTITIONS)
            found = stored[result["offset"]]
            assert found["key"] == record["key"]
            assert found["value"] == record["value"]  # binary: base64 of the same bytes
            assert found["headers"] == record["headers"]
        by_partition[p] += [(r["offset"], rec, r["timestamp"]) for r, rec in mine]

    # -- phase two: a leader killed before leadership moves ---------------------------------------
    victim_partition = 1
    victim = leaders[victim_partition]
    cluster.brokers[victim].kill()
    killed_at = time.monotonic()
    again = _records("b", 40)
    answer = cluster.http.post(url, params={"acks": "all"}, json={"records": again})
    assert answer.status_code == 207, answer.text
    results = answer.json()["results"]
    decided = []
    for record, result in zip(again, results, strict=True):
        expected = _expected_partition(record)
        if expected is not None:
            assert result["partition"] == expected, (record, result)
        if result["partition"] == victim_partition:
            assert result["error_code"] == 50304, result  # NOT_LEADER: retriable
            assert f"broker {victim}" in result["message"], result
        else:
            assert "error_code" not in result, result
            decided.append((result["partition"], result["offset"], record, result["timestamp"]))
    assert any(r["partition"] == victim_partition for r in results)
    assert {p for p, _, _, _ in decided} == {0, 2}
    # The forward failed at once (connection refused), not after an election.
    assert time.monotonic() - killed_at < 2 * SESSION_TIMEOUT_MS / 1000 + 5
    for p in (0, 2):
        mine = [(offset, record, ts) for q, offset, record, ts in decided if q == p]
        expected_count = len(by_partition[p]) + len(mine)
        stored = {r["offset"]: r for r in _fetch(cluster, leaders[p], p, at_least=expected_count)}
        assert len(stored) == expected_count
        for offset, record, timestamp in mine:
            _check_stored(stored[offset], record, timestamp)
