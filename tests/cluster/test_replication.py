"""Replication between three real broker processes: placement, ISR, high watermark, acks=all,
min.insync.replicas, leader redirects, and byte-identical replicas."""

from __future__ import annotations

import time

import pytest

from tests.cluster.harness import SESSION_TIMEOUT_MS, Cluster, log_files

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def _produce_ok(cluster: Cluster, via: int, topic: str, partition: int, values: list[str],
                acks: str = "all", timeout_s: float = 15.0) -> dict[str, object]:
    """Produce, retrying the retriable answers (a leader not yet known, an election)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = cluster.produce(via, topic, partition, values, acks=acks)
        if answer.status_code == 200:
            body: dict[str, object] = answer.json()
            return body
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


def test_three_replicas_acks_all_identical_logs_and_redirects(cluster: Cluster) -> None:
    answer = cluster.create_topic("orders", partitions=3, replication_factor=3, min_insync_replicas=2)
    assert answer.status_code == 201, answer.text
    partitions = answer.json()["partitions"]
    leaders = sorted(p["leader"] for p in partitions)
    assert leaders == [0, 1, 2], "leaders are spread over the brokers"
    for p in partitions:
        assert sorted(p["replicas"]) == [0, 1, 2] and sorted(p["isr"]) == [0, 1, 2]
        assert p["leader"] == p["replicas"][0]

    # Produce every partition through every broker: a non-leader redirects (307) to the leader.
    expected: dict[int, list[str]] = {0: [], 1: [], 2: []}
    for round_ in range(4):
        for p in range(3):
            via = (p + round_) % 3
            values = [f"p{p}-r{round_}-{i}" for i in range(25)]
            body = _produce_ok(cluster, via, "orders", p, values)
            offsets = [r["offset"] for r in body["results"]]  # type: ignore[index, union-attr]
            assert offsets == list(range(len(expected[p]), len(expected[p]) + 25))
            expected[p] += values

    # acks=all answered: the high watermark covers the records on every ISR member, so every
    # replica serves them (each broker reads its own log).
    for p in range(3):
        for broker_id in range(3):
            deadline = time.monotonic() + 10
            while cluster.read_all(broker_id, "orders", p) != expected[p]:
                assert time.monotonic() < deadline, f"broker {broker_id} partition {p}"
                time.sleep(0.1)
    for p in range(3):
        files = [log_files(cluster.brokers[b].data_dir, "orders", p) for b in range(3)]
        assert files[0] and files[0] == files[1] == files[2], f"partition {p} differs between replicas"

    # A 307 to the leader carries its URL and the problem body for clients that do not follow.
    follower = next(b for b in range(3) if b != partitions[0]["leader"])
    raw = cluster.http.post(
        f"{cluster.url(follower)}/v1/topics/orders/partitions/0/records", json={"records": [{"value": "x"}]}
    )
    assert raw.status_code == 307
    assert raw.headers["location"].startswith(cluster.url(partitions[0]["leader"]))
    assert raw.json()["error_code"] == 50304 and raw.json()["leader_id"] == partitions[0]["leader"]

    # replication_factor above the live brokers is refused.
    too_many = cluster.create_topic("wide", partitions=1, replication_factor=4)
    assert too_many.status_code == 422 and too_many.json()["error_code"] == 42205

    # A topic deleted through one broker and re-created through another starts empty on every
    # broker (the others drop their logs of the old topic).
    _deleted_and_recreated_through_another_broker_starts_empty_everywhere(cluster)
    _reassignment_moves_replicas_after_the_new_ones_catch_up(cluster)


def _reassignment_moves_replicas_after_the_new_ones_catch_up(cluster: Cluster) -> None:
    created = cluster.create_topic("moving", partitions=1, replication_factor=2)
    assert created.status_code == 201
    old = created.json()["partitions"][0]["replicas"]
    leader, dropped = old
    added = next(b for b in range(3) if b not in old)
    _produce_ok(cluster, leader, "moving", 0, [f"m{i}" for i in range(50)])

    answer = cluster.http.post(
        f"{cluster.url(dropped)}/v1/topics/moving/partitions/0/reassign", json={"replicas": [added, leader]}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["target_replicas"] == [added, leader]
    assert answer.json()["replicas"] == [leader, dropped, added]
    # The new replica catches up, then the controller switches the replica set; leadership moves
    # to the new preferred replica once it is in sync.
    state = cluster.wait_partition(
        "moving", 0, lambda s: s["replicas"] == [added, leader] and s["leader"] == added, timeout_s=20
    )
    assert sorted(state["isr"]) == sorted([added, leader])
    _produce_ok(cluster, dropped, "moving", 0, ["after"])  # through the dropped broker: a 307
    expected = [f"m{i}" for i in range(50)] + ["after"]
    for broker_id in (added, leader):
        deadline = time.monotonic() + 10
        while True:
            try:
                if cluster.read_all(broker_id, "moving", 0) == expected:
                    break
            except AssertionError:
                pass
            assert time.monotonic() < deadline, f"broker {broker_id}"
            time.sleep(0.1)
    # The dropped broker no longer holds a replica: it sends readers to the leader.
    gone = cluster.http.get(f"{cluster.url(dropped)}/v1/topics/moving/partitions/0/records")
    assert gone.status_code == 307 and gone.json()["leader_id"] == added
    # …and its copy of the partition is emptied (a later replica here starts like a new one).
    deadline = time.monotonic() + 10
    while log_files(cluster.brokers[dropped].data_dir, "moving", 0):
        assert time.monotonic() < deadline, "the dropped replica's log was not emptied"
        time.sleep(0.1)
    offsets = cluster.http.get(f"{cluster.url(dropped)}/v1/topics/moving/partitions/0/offsets").json()
    assert (offsets["log_start_offset"], offsets["log_end_offset"]) == (0, 0)
    assert log_files(cluster.brokers[leader].data_dir, "moving", 0), "the kept replicas keep theirs"
    bad = cluster.http.post(
        f"{cluster.url(0)}/v1/topics/moving/partitions/0/reassign", json={"replicas": [0, 9]}
    )
    assert bad.status_code == 422 and bad.json()["error_code"] == 42205


def test_isr_shrinks_on_fenced_follower_and_min_insync_refuses(cluster: Cluster) -> None:
    assert cluster.create_topic("strict", partitions=1, replication_factor=3,
                                min_insync_replicas=3).status_code == 201
    leader = cluster.partition("strict", 0)["leader"]
    _produce_ok(cluster, leader, "strict", 0, ["a", "b"])
    victim = next(b for b in range(3) if b != leader)
    cluster.brokers[victim].kill()
    killed_at = time.monotonic()
    state = cluster.wait_partition("strict", 0, lambda s: victim not in s["isr"], timeout_s=15)
    assert time.monotonic() - killed_at < 3 * SESSION_TIMEOUT_MS / 1000
    assert state["leader"] == leader
    # The leader's own view (what its produce checks use) follows within a metadata read.
    deadline = time.monotonic() + 5
    view = cluster.view(leader)
    while {"topic": "strict", "partition": 0} not in view["under_replicated_partitions"]:
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
        view = cluster.view(leader)
    assert {b["broker_id"]: b["state"] for b in view["brokers"]}[victim] == "fenced"

    refused = cluster.produce(leader, "strict", 0, ["c"])
    assert refused.status_code == 503 and refused.json()["error_code"] == 50301, refused.text
    assert cluster.produce(leader, "strict", 0, ["c"], acks="1").status_code == 200

    # The follower comes back, catches up, rejoins the ISR: acks=all succeeds again.
    cluster.start([victim])
    cluster.wait_partition("strict", 0, lambda s: victim in s["isr"], timeout_s=20)
    _produce_ok(cluster, leader, "strict", 0, ["d"])
    deadline = time.monotonic() + 10
    while cluster.read_all(victim, "strict", 0) != ["a", "b", "c", "d"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _deleted_and_recreated_through_another_broker_starts_empty_everywhere(cluster: Cluster) -> None:
    assert cluster.create_topic("cycle", partitions=1, replication_factor=3).status_code == 201
    _produce_ok(cluster, 0, "cycle", 0, ["old-1", "old-2"])
    for b in range(3):
        deadline = time.monotonic() + 10
        while cluster.read_all(b, "cycle", 0) != ["old-1", "old-2"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert cluster.http.delete(f"{cluster.url(1)}/v1/topics/cycle").status_code == 204
    time.sleep(1.0)  # every broker notices the deletion on its next metadata read
    assert cluster.create_topic("cycle", partitions=1, replication_factor=3).status_code == 201
    _produce_ok(cluster, 2, "cycle", 0, ["new-1"])
    for b in range(3):
        deadline = time.monotonic() + 10
        while cluster.read_all(b, "cycle", 0) != ["new-1"]:
            assert time.monotonic() < deadline, cluster.read_all(b, "cycle", 0)
            time.sleep(0.1)


def test_no_unclean_election_partition_waits_offline_for_its_last_isr_member(cluster: Cluster) -> None:
    assert cluster.create_topic("solo", partitions=1, replication_factor=3,
                                min_insync_replicas=1).status_code == 201
    leader = cluster.partition("solo", 0)["leader"]
    followers = [b for b in range(3) if b != leader]
    _produce_ok(cluster, leader, "solo", 0, ["x"])
    for follower in followers:
        cluster.brokers[follower].kill()
    cluster.wait_partition("solo", 0, lambda s: s["isr"] == [leader], timeout_s=15)
    _produce_ok(cluster, leader, "solo", 0, ["y"])  # acknowledged by the leader alone (min.insync=1)
    cluster.brokers[leader].kill()

    # A replica outside the ISR comes back: it lacks "y", so it must not lead.
    cluster.start([followers[0]])
    state = cluster.wait_partition("solo", 0, lambda s: s["leader"] is None, timeout_s=20)
    assert state["isr"] == [leader]
    time.sleep(1.0)  # a few controller passes: still offline
    assert cluster.partition("solo", 0)["leader"] is None
    assert {"topic": "solo", "partition": 0} in cluster.view(followers[0])["under_replicated_partitions"]
    refused = cluster.http.post(
        f"{cluster.url(followers[0])}/v1/topics/solo/partitions/0/records", json={"records": [{"value": "z"}]}
    )
    assert refused.status_code == 503 and refused.json()["error_code"] == 50304

    # The last ISR member returns and leads again with everything it acknowledged; the other
    # replica catches up from it.
    cluster.start([leader])
    cluster.wait_partition("solo", 0, lambda s: s["leader"] == leader, timeout_s=20)
    for broker_id in (leader, followers[0]):
        deadline = time.monotonic() + 15
        while True:
            try:
                if cluster.read_all(broker_id, "solo", 0) == ["x", "y"]:
                    break
            except AssertionError:  # 307 while the replica is not yet servable
                pass
            assert time.monotonic() < deadline, f"broker {broker_id} never served x, y"
            time.sleep(0.2)
