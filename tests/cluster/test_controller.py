"""The controller's decisions (``app.cluster.controller.decide``) and replica placement, without I/O."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from app.catalog.cluster import PartitionLeadership
from app.cluster.controller import decide
from app.cluster.placement import assign_replicas


def _p(
    leader: int | None, replicas: tuple[int, ...], isr: tuple[int, ...], epoch: int = 5
) -> PartitionLeadership:
    return PartitionLeadership(1, "t", 0, leader, replicas, isr, epoch, 10)


def test_healthy_partition_is_left_alone() -> None:
    assert decide(_p(0, (0, 1, 2), (0, 1, 2)), {0, 1, 2}) is None


def test_fenced_follower_leaves_the_isr_without_an_epoch_bump() -> None:
    change = decide(_p(0, (0, 1, 2), (0, 1, 2)), {0, 2})
    assert change is not None
    assert (change.leader, change.isr, change.leader_epoch) == (0, (0, 2), 5)


def test_fenced_leader_is_replaced_from_the_isr_in_preference_order() -> None:
    change = decide(_p(0, (0, 1, 2), (0, 2, 1)), {1, 2})
    assert change is not None
    assert change.leader == 1 and set(change.isr) == {1, 2} and change.leader_epoch == 6


def test_no_unclean_election_a_replica_outside_the_isr_never_leads() -> None:
    change = decide(_p(0, (0, 1, 2), (0,)), {1, 2})
    assert change is not None
    assert change.leader is None and change.isr == (0,) and change.leader_epoch == 6
    # Offline stays offline until an ISR member is back, then that member leads.
    offline = _p(None, (0, 1, 2), (0,), epoch=6)
    assert decide(offline, {1, 2}) is None
    back = decide(offline, {0, 1, 2})
    assert back is not None and back.leader == 0 and back.leader_epoch == 7


def test_leadership_returns_to_the_preferred_replica_once_in_sync() -> None:
    change = decide(_p(1, (0, 1, 2), (1, 2, 0)), {0, 1, 2})
    assert change is not None and change.leader == 0 and change.leader_epoch == 6
    assert decide(_p(1, (0, 1, 2), (1, 2)), {0, 1, 2}) is None  # not in sync yet: stays


@settings(max_examples=200, deadline=None)
@given(
    replicas=st.permutations([0, 1, 2, 3, 4]).map(lambda r: tuple(r[:3])),
    isr_mask=st.lists(st.booleans(), min_size=3, max_size=3),
    leader_index=st.one_of(st.none(), st.integers(0, 2)),
    live=st.frozensets(st.integers(0, 4)),
)
def test_every_decision_keeps_the_safety_rules(
    replicas: tuple[int, ...], isr_mask: list[bool], leader_index: int | None, live: frozenset[int]
) -> None:
    isr = tuple(b for b, inside in zip(replicas, isr_mask, strict=True) if inside)
    leader = None if leader_index is None else replicas[leader_index]
    if leader is not None and leader not in isr:
        isr = (leader, *isr)
    if not isr:
        return
    before = _p(leader, replicas, isr)
    change = decide(before, live)
    if change is None:
        return
    assert change.leader_epoch >= before.leader_epoch
    if change.leader is not None:
        # A leader comes from the old ISR and is live; the ISR only loses members and keeps the leader.
        assert change.leader in isr and change.leader in live and change.leader in change.isr
        assert set(change.isr) <= set(isr)
        if change.leader != leader:
            assert change.leader_epoch == before.leader_epoch + 1
    else:
        assert change.isr == isr and not (set(isr) & live)


def test_placement_spreads_leaders_and_replicas() -> None:
    assignment = assign_replicas([2, 0, 1], partitions=range(6), replication_factor=3, start=1)
    assert all(sorted(r) == [0, 1, 2] for r in assignment.values())
    assert Counter(r[0] for r in assignment.values()) == {0: 2, 1: 2, 2: 2}
    two = assign_replicas([0, 1, 2, 3], partitions=range(4, 8), replication_factor=2, start=0)
    assert list(two) == [4, 5, 6, 7]
    assert all(len(set(r)) == 2 for r in two.values())
    assert Counter(b for r in two.values() for b in r) == {0: 2, 1: 2, 2: 2, 3: 2}


def test_reassignment_finishes_only_once_every_target_replica_is_in_sync() -> None:
    moving = PartitionLeadership(1, "t", 0, 0, (0, 1, 2), (0, 1), 5, 10, target_replicas=(2, 0))
    assert decide(moving, {0, 1, 2}) is None  # 2 has not caught up: nothing to do yet
    caught_up = PartitionLeadership(1, "t", 0, 0, (0, 1, 2), (0, 1, 2), 5, 10, target_replicas=(2, 0))
    done = decide(caught_up, {0, 1, 2})
    assert done is not None and done.replicas == (2, 0)
    assert done.leader == 0 and set(done.isr) == {0, 2} and done.leader_epoch == 5
    # The leader is not in the target set: the first live target replica in the ISR leads.
    away = PartitionLeadership(1, "t", 0, 1, (1, 0, 2), (1, 0, 2), 5, 10, target_replicas=(2, 0))
    moved = decide(away, {0, 1, 2})
    assert moved is not None and moved.replicas == (2, 0) and moved.leader == 2 and moved.leader_epoch == 6
