"""Hypothesis state machine over the group coordinator, against a real (SQLite) catalog.

After any sequence of joins (dynamic and static), leaves, heartbeats, commits, clock jumps past session
timeouts and topic changes, the invariants hold: every subscribed partition has exactly one owner, a
live member subscribed to its topic; no partition is fetchable by two members; the members are exactly
those whose session has not expired; commits with a stale generation or for a partition the member
does not own are refused; and once every member has heartbeated three times the group is Stable and
balanced.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy.orm import Session

from app.catalog.db import Catalog
from app.groups.coordinator import GroupCoordinator
from app.groups.errors import IllegalGenerationError, UnknownGroupError, UnknownMemberError
from app.groups.model import JoinRequest, OffsetCommit

SESSION_MS = 1000
TOPICS = ("a", "b", "c")
_group_ids = itertools.count()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path: Path = tmp_path_factory.mktemp("stateful") / "catalog.db"
    catalog = Catalog(f"sqlite:///{path}")
    catalog.migrate()
    return catalog


class CoordinatorMachine(RuleBasedStateMachine):
    catalog: Catalog

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000
        self.topics: dict[str, int] = {"a": 3, "b": 2}
        self.group = f"g{next(_group_ids)}"
        self.ids = itertools.count()  # deterministic member ids: replays draw the same choices
        self.coordinator = GroupCoordinator(
            self.catalog,
            min_session_timeout_ms=100,
            max_session_timeout_ms=10_000,
            topic_lookup=self._lookup,
            clock=lambda: self.now,
            new_member_id=lambda kind: f"{kind}-{next(self.ids):04d}",
        )
        #: member id → (subscribed topics, last contact as the model sees it)
        self.members: dict[str, tuple[frozenset[str], int]] = {}
        self.instances: dict[str, str] = {}  # instance id → member id
        self.assignor = "range"
        self.generations: dict[str, int] = {}
        #: partition → (owner, was it being revoked) at the previous observation
        self.last_seen_owner: dict[tuple[str, int], tuple[str, bool]] = {}

    def _lookup(self, _session: Session) -> Mapping[str, int]:
        return dict(self.topics)

    @initialize(assignor=st.sampled_from(["range", "roundrobin", "cooperative-sticky"]))
    def choose_assignor(self, assignor: str) -> None:
        self.assignor = assignor

    # --------------------------------------------------------------- model helpers

    def _expire_model(self) -> None:
        for member_id, (_, seen) in list(self.members.items()):
            if seen + SESSION_MS < self.now:
                del self.members[member_id]
        self.instances = {i: m for i, m in self.instances.items() if m in self.members}

    def _touch(self, member_id: str) -> None:
        topics, _ = self.members[member_id]
        self.members[member_id] = (topics, self.now)

    # --------------------------------------------------------------- rules

    @rule(
        topics=st.sets(st.sampled_from(TOPICS), min_size=1, max_size=3),
        instance=st.none() | st.sampled_from(["i1", "i2"]),
    )
    def join(self, topics: set[str], instance: str | None) -> None:
        self._expire_model()
        returning = self.instances.get(instance) if instance is not None else None
        before = self.coordinator.describe(self.group) if returning is not None else None
        view = self.coordinator.join(
            self.group,
            JoinRequest(
                topics=tuple(sorted(topics)),
                assignor=self.assignor,
                session_timeout_ms=SESSION_MS,
                instance_id=instance,
            ),
        )
        if returning is not None and before is not None:
            old_topics = self.members.pop(returning)[0]
            if old_topics == frozenset(topics):
                # KIP-345: a static member returning with the same subscription keeps its partitions
                # and the group does not rebalance.
                old = next(m for m in before.members if m.member_id == returning)
                assert view.generation == before.generation
                assert view.assignment == old.assignment
                assert view.revoking == old.revoking
            with pytest.raises(UnknownMemberError):
                self.coordinator.sync(self.group, returning)  # the old member id is fenced
        if instance is not None:
            self.instances[instance] = view.member_id
        self.members[view.member_id] = (frozenset(topics), self.now)
        self.generations[view.member_id] = view.generation

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        member_id = data.draw(st.sampled_from(list(self.members)))
        self._expire_model()
        if member_id in self.members:
            self.coordinator.leave(self.group, member_id)
            del self.members[member_id]
        else:
            with pytest.raises(UnknownMemberError):
                self.coordinator.leave(self.group, member_id)

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data(), ack=st.booleans())
    def heartbeat(self, data: st.DataObject, ack: bool) -> None:
        member_id = data.draw(st.sampled_from(list(self.members)))
        self._expire_model()
        if member_id not in self.members:
            with pytest.raises(UnknownMemberError):
                self.coordinator.sync(self.group, member_id)
            return
        acked = self.generations.get(member_id) if ack else None
        state = self.coordinator.sync(self.group, member_id, acked_generation=acked)
        self._touch(member_id)
        self.generations[member_id] = state.view.generation

    @rule(ms=st.sampled_from([10, 300, 900, 1500]))
    def advance_clock(self, ms: int) -> None:
        self.now += ms

    @rule(topic=st.sampled_from(TOPICS), partitions=st.integers(1, 4))
    def change_topic(self, topic: str, partitions: int) -> None:
        # Partitions only grow (as in Kafka); a topic appears when first given a count.
        self.topics[topic] = max(self.topics.get(topic, 0), partitions)

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data(), someone_joins=st.booleans())
    def poll(self, data: st.DataObject, someone_joins: bool) -> None:
        """A poll: peek, (maybe a rebalance meanwhile), then store positions by the fast path."""
        member_id = data.draw(st.sampled_from(list(self.members)))
        self._expire_model()
        try:
            state = self.coordinator.peek(self.group, member_id)
        except UnknownMemberError:
            assert member_id not in self.members
            return
        if someone_joins:
            view = self.coordinator.join(
                self.group,
                JoinRequest(topics=tuple(TOPICS), assignor=self.assignor, session_timeout_ms=SESSION_MS),
            )
            self.members[view.member_id] = (frozenset(TOPICS), self.now)
            self.generations[view.member_id] = view.generation
        positions = {tp: 1 for tp in state.view.assignment}
        stored = self.coordinator.advance(self.group, member_id, positions)
        if member_id not in self.members:
            assert not stored, "an expired member's positions were stored"
            return
        if stored:
            self._touch(member_id)
            mine = next(m for m in self.coordinator.describe(self.group).members if m.member_id == member_id)
            assert set(positions) <= set(mine.assignment), "positions stored for a partition it lost"

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data(), stale_by=st.integers(0, 2))
    def commit(self, data: st.DataObject, stale_by: int) -> None:
        member_id = data.draw(st.sampled_from(list(self.members)))
        self._expire_model()
        if member_id not in self.members:
            return
        state = self.coordinator.sync(self.group, member_id)
        self._touch(member_id)
        view = state.view
        self.generations[member_id] = view.generation
        owned = view.assignment + view.revoking
        all_partitions = [(t, p) for t, n in self.topics.items() for p in range(n)]
        not_owned = [tp for tp in all_partitions if tp not in owned]
        if stale_by:
            target = owned[0] if owned else all_partitions[0]
            with pytest.raises(IllegalGenerationError):
                self.coordinator.commit(
                    self.group,
                    [OffsetCommit(target[0], target[1], 5)],
                    member_id=member_id,
                    generation=view.generation - stale_by,
                )
        elif not_owned and data.draw(st.booleans()):
            tp = data.draw(st.sampled_from(not_owned))
            with pytest.raises(IllegalGenerationError):
                self.coordinator.commit(
                    self.group,
                    [OffsetCommit(tp[0], tp[1], 5)],
                    member_id=member_id,
                    generation=view.generation,
                )
        elif owned:
            tp = owned[0]
            self.coordinator.commit(
                self.group, [OffsetCommit(tp[0], tp[1], 7)], member_id=member_id, generation=view.generation
            )
            committed = {(c.topic, c.partition): c.offset for c in self.coordinator.committed(self.group)}
            assert committed[tp] == 7

    @precondition(lambda self: bool(self.members))
    @rule()
    def everyone_heartbeats_three_times(self) -> None:
        # Round 1 tells old owners what is revoked, round 2 is their acknowledgement (the partitions
        # are handed over in a new generation), round 3 tells everyone that generation.
        self._expire_model()
        for _ in range(3):
            for member_id in list(self.members):
                state = self.coordinator.sync(self.group, member_id)
                self._touch(member_id)
                self.generations[member_id] = state.view.generation
        description = self.coordinator.describe(self.group)
        if not self.members:
            return
        assert description.state == "Stable", description
        assert all(not m.revoking for m in description.members)
        # Range balances each topic on its own (Kafka's RangeAssignor): only the others balance the total.
        if self.assignor != "range" and len({topics for topics, _ in self.members.values()}) == 1:
            counts = [len(m.assignment) for m in description.members]
            assert max(counts) - min(counts) <= 1, description

    # --------------------------------------------------------------- invariants

    @invariant()
    def ownership_is_exclusive_and_complete(self) -> None:
        self._expire_model()
        if not self.generations:
            with pytest.raises(UnknownGroupError):
                self.coordinator.describe(self.group)
            return
        description = self.coordinator.describe(self.group)
        live = {m.member_id for m in description.members}
        assert live == set(self.members), (live, set(self.members))
        subscribed = {
            (topic, partition)
            for topics, _ in self.members.values()
            for topic in topics
            if topic in self.topics
            for partition in range(self.topics[topic])
        }
        owners: dict[tuple[str, int], str] = {}
        for member in description.members:
            for tp in member.assignment + member.revoking:
                assert tp not in owners, f"{tp} owned by {owners[tp]} and {member.member_id}"
                owners[tp] = member.member_id
                assert tp[0] in self.members[member.member_id][0], "owner does not subscribe to the topic"
        assert set(owners) == subscribed
        if self.assignor == "cooperative-sticky":
            # Two phases: a partition leaves a live owner only after it was seen being revoked.
            for tp, owner in owners.items():
                previous = self.last_seen_owner.get(tp)
                if previous is not None and previous[0] != owner and previous[0] in self.members:
                    assert previous[1], f"{tp} moved from {previous[0]} to {owner} without a revocation"
        self.last_seen_owner = {
            tp: (m.member_id, tp in m.revoking)
            for m in description.members
            for tp in m.assignment + m.revoking
        }
        if not self.members:
            assert description.state in ("Empty", "Dead")


def test_coordinator_state_machine(catalog: Catalog) -> None:
    CoordinatorMachine.catalog = catalog
    runner = CoordinatorMachine.TestCase
    runner.settings = settings(
        max_examples=60,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=False,
    )
    runner().runTest()
