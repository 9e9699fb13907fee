"""The group coordinator: membership, rebalancing, positions and committed offsets, all in the catalog.

There is no per-process consumer state: every operation is one catalog transaction that first locks
the group's row (``app.catalog.groups.lock_group``), so two broker processes never interleave a
rebalance and any process can serve any request of any member (docs/groups.md).

Every operation first *settles* the group with the catalog's clock readings (``app/groups/settle.py``),
lazily doing what a Kafka coordinator's timers would do:

1. members whose ``last_seen_ms + session_timeout_ms`` has passed are removed;
2. cooperative revocations whose old owner released the partition (it has been told about the
   revocation and come back, or it is gone, or its rebalance timeout passed) are handed over to
   their new owner;
3. if the membership, a subscription or the subscribed topics' partitions changed, the assignment is
   recomputed and the generation bumped. Eager assignors (range, roundrobin) move partitions at once;
   ``cooperative-sticky`` revokes the partitions that must move first (the old owner stops fetching
   them but may still commit them) and assigns them in a later generation, so a partition never has
   two fetching owners and the other partitions keep being consumed meanwhile.

Group states: Empty (no members), PreparingRebalance (revocations pending), CompletingRebalance (some
member has not yet been told the current generation), Stable, Dead (committed offsets expired).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from app.catalog.db import Catalog
from app.catalog.groups import (
    CommittedOffsetRow,
    GroupRow,
    MemberRow,
    OwnershipRow,
    delete_group,
    lock_group,
    topic_partition_counts,
)
from app.catalog.groups import (
    list_groups as catalog_list_groups,
)
from app.errors_base import InvalidParameterError, UnknownPartitionError, UnknownTopicError
from app.groups import settle
from app.groups.assignors import ASSIGNORS, TopicPartition
from app.groups.errors import (
    GroupNotEmptyError,
    IllegalGenerationError,
    InvalidSessionTimeoutError,
    UnknownGroupError,
    UnknownMemberError,
)
from app.groups.model import (
    AUTO_OFFSET_RESETS,
    CommittedOffset,
    GroupDescription,
    GroupSummary,
    JoinRequest,
    MemberDescription,
    MemberState,
    MemberView,
    OffsetCommit,
    PartitionPosition,
)
from app.groups.patterns import compile_topic_pattern
from app.groups.settle import GroupTxn, TopicLookup

__all__ = ["DEFAULT_SESSION_TIMEOUT_MS", "GroupCoordinator", "heartbeat_interval_ms"]

#: Kafka's session.timeout.ms default since 3.0 (KIP-735), clamped into the broker's bounds.
DEFAULT_SESSION_TIMEOUT_MS = 45_000


def heartbeat_interval_ms(session_timeout_ms: int) -> int:
    """How often a member should heartbeat: a third of its session, at most Kafka's 3 s default."""
    return max(50, min(3000, session_timeout_ms // 3))


class _NotAdvanced(Exception):
    """Rolls back ``advance``: the member or one of its partitions changed; settle instead."""


def _rowcount(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else -1


def _now_ms() -> int:
    return int(time.time() * 1000)


class GroupCoordinator:
    """Consumer-group operations over the catalog; every public method is one transaction."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1_800_000,
        offsets_retention_ms: int = 7 * 24 * 3600 * 1000,
        topic_lookup: TopicLookup = topic_partition_counts,
        clock: Callable[[], int] = _now_ms,
        new_member_id: Callable[[str], str] | None = None,
    ) -> None:
        self._catalog = catalog
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.offsets_retention_ms = offsets_retention_ms
        self._topic_lookup = topic_lookup
        self._clock = clock
        #: client kind → a fresh member id; tests pass a deterministic one.
        self._new_member_id = new_member_id or (lambda kind: f"{kind}-{uuid.uuid4().hex}")

    # ------------------------------------------------------------------ membership

    def join(self, group_id: str, request: JoinRequest) -> MemberView:
        """Add a member (or re-admit a static one) and answer its generation and assignment."""
        session_timeout = self._session_timeout(request.session_timeout_ms)
        rebalance_timeout = request.rebalance_timeout_ms or session_timeout
        if rebalance_timeout <= 0:
            raise InvalidParameterError("rebalance_timeout_ms must be positive")
        self._check_subscription(request)
        with self._locked(group_id, create=True) as txn:
            assert txn is not None
            settle.expire(txn)
            static = None
            if request.instance_id is not None:
                static = next((m for m in txn.members.values() if m.instance_id == request.instance_id), None)
            others = [m for m in txn.members.values() if m is not static]
            if others and txn.group.protocol not in (None, request.assignor):
                raise InvalidParameterError(
                    f"group {group_id!r} uses the {txn.group.protocol} assignor; "
                    f"a member cannot join it with {request.assignor}",
                    protocol=txn.group.protocol,
                )
            member_id = self._new_member_id(request.client_kind)
            force = True
            if static is not None:
                # KIP-345: the returning instance gets a new member id (fencing the old one) and keeps
                # its partitions; only a changed subscription makes the group rebalance.
                force = (
                    static.topics != (list(request.topics) if request.topics is not None else None)
                    or static.topic_pattern != request.topic_pattern
                    or static.assignor != request.assignor
                )
                settle.rename_member(txn, static, member_id)
            member = MemberRow(
                group_id=group_id,
                member_id=member_id,
                instance_id=request.instance_id,
                topics=list(request.topics) if request.topics is not None else None,
                topic_pattern=request.topic_pattern,
                assignor=request.assignor,
                session_timeout_ms=session_timeout,
                rebalance_timeout_ms=rebalance_timeout,
                auto_offset_reset=request.auto_offset_reset,
                client_kind=request.client_kind,
                joined_at_ms=txn.now_ms,
                last_seen_ms=txn.now_ms,
                known_generation=static.known_generation if static is not None else 0,
            )
            txn.session.add(member)
            txn.members[member_id] = member
            txn.group.protocol = request.assignor
            settle.reconcile(txn, self._topic_lookup, force=force)
            member.known_generation = txn.group.generation
            settle.finish(txn)
            return self._view(txn, member)

    def leave(self, group_id: str, member_id: str) -> None:
        """Remove a member; the others rebalance."""
        with self._locked(group_id, create=False) as txn:
            if txn is None:
                raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}")
            settle.expire(txn)
            member = txn.members.pop(member_id, None)
            if member is None:
                raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}")
            txn.session.delete(member)
            txn.removed.append(member_id)
            settle.reconcile(txn, self._topic_lookup, force=True)
            settle.finish(txn)

    def sync(
        self,
        group_id: str,
        member_id: str,
        *,
        positions: Mapping[TopicPartition, int] | None = None,
        acked_generation: int | None = None,
        with_positions: bool = True,
    ) -> MemberState:
        """A heartbeat: record ``positions``, settle the group, answer the member's view and positions.

        ``positions`` are stored only for partitions the member still owns. ``acked_generation`` says
        the member has finished with every partition revoked from it up to that generation. Without
        ``with_positions`` the answer's positions are left empty (one query less).
        """
        with self._locked(group_id, create=False) as locked:
            txn, member = self._live_member(locked, group_id, member_id)
            member.last_seen_ms = txn.now_ms
            acked = member.known_generation
            if acked_generation is not None:
                acked = max(acked, min(acked_generation, txn.group.generation))
            for tp, offset in (positions or {}).items():
                row = txn.rows.get(tp)
                if row is not None and row.owner_member_id == member_id and row.position != offset:
                    row.position = offset
            settle.reconcile(txn, self._topic_lookup, acting=member_id, acked_generation=acked)
            member.known_generation = txn.group.generation
            settle.finish(txn)
            view = self._view(txn, member)
            if not with_positions:
                return MemberState(view=view, positions=())
            committed = self._committed_map(txn.session, group_id)
            return MemberState(
                view=view,
                positions=tuple(
                    PartitionPosition(tp[0], tp[1], txn.rows[tp].position, committed.get(tp))
                    for tp in view.assignment
                ),
            )

    def peek(self, group_id: str, member_id: str) -> MemberState:
        """The member's fetchable partitions and positions, from a read-only transaction.

        No lock, no settling: a poll reads with this, fetches, and then ``sync``s, which settles the
        group and stores only positions of partitions the member still owns. Raises
        ``UnknownMemberError`` when the member is not in the catalog.
        """
        with self._catalog.read() as session:
            member = session.get(MemberRow, (group_id, member_id))
            group = session.get(GroupRow, group_id)
            if member is None or group is None:
                raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}; join again")
            mine = session.scalars(
                select(OwnershipRow).where(
                    OwnershipRow.group_id == group_id, OwnershipRow.owner_member_id == member_id
                )
            ).all()
            rows = sorted(
                (r for r in mine if r.target_member_id is None), key=lambda r: (r.topic, r.partition)
            )
            owned = tuple((r.topic, r.partition) for r in rows)
            revoking = tuple(sorted((r.topic, r.partition) for r in mine if r.target_member_id is not None))
            # Committed offsets matter only where the member has no position yet.
            committed = (
                self._committed_map(session, group_id) if any(r.position is None for r in rows) else {}
            )
            view = MemberView(
                group_id=group_id,
                member_id=member_id,
                generation=group.generation,
                state=group.state,
                assignment=owned,
                revoking=revoking,
                heartbeat_interval_ms=heartbeat_interval_ms(member.session_timeout_ms),
                session_timeout_ms=member.session_timeout_ms,
                auto_offset_reset=member.auto_offset_reset,
            )
            positions = tuple(
                PartitionPosition(r.topic, r.partition, r.position, committed.get((r.topic, r.partition)))
                for r in rows
            )
            steady = group.state == "Stable" and member.known_generation == group.generation and not revoking
            return MemberState(view=view, positions=positions, steady=steady)

    def advance(self, group_id: str, member_id: str, positions: Mapping[TopicPartition, int]) -> bool:
        """Store a live member's positions and count the contact, without settling the group.

        The fast path of a poll in a Stable group: two small statements instead of a settle. It
        answers False (and changes nothing) when the member is gone or expired or no longer owns
        one of the partitions; the caller then runs ``sync``, which settles the group. Expiry of
        *other* members is left to heartbeats, joins and the periodic sweep. On PostgreSQL the
        group row is share-locked first, so this never interleaves with a rebalance (which holds
        it exclusively) and takes locks in the same order.
        """
        now = self._clock()
        try:
            with self._catalog.begin() as session:
                if session.get_bind().dialect.name == "postgresql":
                    group_row = select(GroupRow.generation).where(GroupRow.group_id == group_id)
                    session.execute(group_row.with_for_update(read=True))
                touched = session.execute(
                    update(MemberRow)
                    .where(
                        MemberRow.group_id == group_id,
                        MemberRow.member_id == member_id,
                        MemberRow.last_seen_ms + MemberRow.session_timeout_ms >= now,
                    )
                    .values(last_seen_ms=now)
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(touched) != 1:
                    raise _NotAdvanced
                for (topic, partition), offset in positions.items():
                    stored = session.execute(
                        update(OwnershipRow)
                        .where(
                            OwnershipRow.group_id == group_id,
                            OwnershipRow.topic == topic,
                            OwnershipRow.partition == partition,
                            OwnershipRow.owner_member_id == member_id,
                            OwnershipRow.target_member_id.is_(None),
                        )
                        .values(position=offset)
                        .execution_options(synchronize_session=False)
                    )
                    if _rowcount(stored) != 1:
                        raise _NotAdvanced  # rolls the transaction back
        except _NotAdvanced:
            return False
        return True

    def seek(self, group_id: str, member_id: str, tp: TopicPartition, offset: int) -> None:
        """Set the member's position in a partition it owns."""
        with self._locked(group_id, create=False) as locked:
            txn, member = self._live_member(locked, group_id, member_id)
            member.last_seen_ms = txn.now_ms
            settle.reconcile(txn, self._topic_lookup)
            row = txn.rows.get(tp)
            if row is None or row.owner_member_id != member_id or row.target_member_id is not None:
                raise IllegalGenerationError(
                    f"member {member_id!r} does not own {tp[0]}-{tp[1]} in generation {txn.group.generation}",
                    generation=txn.group.generation,
                )
            row.position = offset
            settle.finish(txn)

    # ------------------------------------------------------------------ offsets

    def commit(
        self,
        group_id: str,
        offsets: Sequence[OffsetCommit],
        *,
        member_id: str | None = None,
        generation: int | None = None,
    ) -> None:
        """Store committed offsets, fenced by the member's generation and ownership.

        Without ``member_id`` (an admin or a simple consumer) only while the group has no members.
        """
        for commit in offsets:
            if commit.offset < 0:
                raise InvalidParameterError(
                    f"offset {commit.offset} of {commit.topic}-{commit.partition} is negative"
                )
        with self._locked(group_id, create=member_id is None) as locked:
            if member_id is None:
                assert locked is not None
                txn = locked
                settle.expire(txn)
                if txn.members:
                    raise GroupNotEmptyError(
                        f"group {group_id!r} has members: commit as one of them (member_id, generation)"
                    )
                topics = self._topic_lookup(txn.session)
                for commit in offsets:
                    self._check_partition(topics, commit.topic, commit.partition)
            else:
                txn, member = self._live_member(locked, group_id, member_id)
                member.last_seen_ms = txn.now_ms
                settle.reconcile(txn, self._topic_lookup)
                if generation != txn.group.generation:
                    raise IllegalGenerationError(
                        f"generation {generation} is stale: the group is at generation "
                        f"{txn.group.generation}",
                        generation=txn.group.generation,
                    )
                for commit in offsets:
                    row = txn.rows.get((commit.topic, commit.partition))
                    if row is None or row.owner_member_id != member_id:
                        raise IllegalGenerationError(
                            f"member {member_id!r} does not own {commit.topic}-{commit.partition}",
                            generation=txn.group.generation,
                        )
            settle.upsert_offsets(txn, offsets)
            if member_id is not None:
                # A commit after the member was told of a revocation releases the revoked partition.
                acked = txn.members[member_id].known_generation
                settle.reconcile(txn, self._topic_lookup, acting=member_id, acked_generation=acked)
            settle.finish(txn)

    def commit_forward(self, group_id: str, offsets: Sequence[OffsetCommit]) -> None:
        """Commit offsets that move forward only (the ``Last-Event-ID`` of a reconnecting SSE client).

        The cursor holds offsets every record below which the client has been delivered, so moving a
        commit up to them never skips an undelivered record; an older cursor never moves it back.
        Partitions that no longer exist are ignored.
        """
        with self._locked(group_id, create=True) as txn:
            assert txn is not None
            settle.expire(txn)
            topics = self._topic_lookup(txn.session)
            current = self._committed_map(txn.session, group_id)
            forward = [
                c
                for c in offsets
                if c.topic in topics
                and 0 <= c.partition < topics[c.topic]
                and c.offset >= 0
                and c.offset > current.get((c.topic, c.partition), -1)
            ]
            settle.upsert_offsets(txn, forward)
            settle.reconcile(txn, self._topic_lookup)
            settle.finish(txn)

    def committed(self, group_id: str) -> list[CommittedOffset]:
        """The group's committed offsets, by topic and partition."""
        with self._catalog.read() as session:
            if session.get(GroupRow, group_id) is None:
                raise UnknownGroupError(f"no group {group_id!r}")
            return self._committed_list(session, group_id)

    def reset_offsets(self, group_id: str, offsets: Sequence[OffsetCommit]) -> None:
        """Overwrite the committed offsets of a group without members (``--reset-offsets``)."""
        self.commit(group_id, offsets)

    def members_count(self, group_id: str) -> int:
        """How many live members the group has (settling it first)."""
        with self._locked(group_id, create=False) as txn:
            if txn is None:
                return 0
            settle.expire(txn)
            settle.reconcile(txn, self._topic_lookup)
            settle.finish(txn)
            return len(txn.members)

    # ------------------------------------------------------------------ groups

    def describe(self, group_id: str) -> GroupDescription:
        """The group's state, protocol, generation, members with assignments, and committed offsets."""
        with self._locked(group_id, create=False) as txn:
            if txn is None:
                raise UnknownGroupError(f"no group {group_id!r}")
            settle.expire(txn)
            settle.reconcile(txn, self._topic_lookup)
            settle.finish(txn)
            members = []
            for member in sorted(txn.members.values(), key=lambda m: m.member_id):
                members.append(
                    MemberDescription(
                        member_id=member.member_id,
                        instance_id=member.instance_id,
                        client_kind=member.client_kind,
                        topics=tuple(member.topics) if member.topics is not None else None,
                        topic_pattern=member.topic_pattern,
                        session_timeout_ms=member.session_timeout_ms,
                        last_seen_ms=member.last_seen_ms,
                        known_generation=member.known_generation,
                        assignment=settle.owned(txn, member.member_id),
                        revoking=settle.revoking(txn, member.member_id),
                    )
                )
            return GroupDescription(
                group_id=group_id,
                state=txn.group.state,
                protocol=txn.group.protocol,
                generation=txn.group.generation,
                members=tuple(members),
                offsets=tuple(self._committed_list(txn.session, group_id)),
            )

    def list_groups(self) -> list[GroupSummary]:
        """Every group with its last known state (the periodic sweep keeps it current)."""
        with self._catalog.read() as session:
            counts: dict[str, int] = {}
            for (gid,) in session.execute(select(MemberRow.group_id)).all():
                counts[gid] = counts.get(gid, 0) + 1
            return [
                GroupSummary(g.group_id, g.state, g.protocol, g.generation, counts.get(g.group_id, 0))
                for g in catalog_list_groups(session)
            ]

    def delete(self, group_id: str) -> None:
        """Delete a group without members, with its committed offsets."""
        with self._locked(group_id, create=False) as txn:
            if txn is None:
                raise UnknownGroupError(f"no group {group_id!r}")
            settle.expire(txn)
            if txn.members:
                raise GroupNotEmptyError(f"group {group_id!r} still has {len(txn.members)} member(s)")
            delete_group(txn.session, group_id=group_id)

    def sweep(self) -> int:
        """Settle every group (expire sessions, rebalance, expire offsets); answers members expired."""
        with self._catalog.read() as session:
            group_ids = [g.group_id for g in catalog_list_groups(session)]
        expired = 0
        for group_id in group_ids:
            with self._locked(group_id, create=False) as txn:
                if txn is None:
                    continue
                expired += settle.expire(txn)
                settle.reconcile(txn, self._topic_lookup)
                settle.finish(txn)
                settle.expire_offsets(txn, self.offsets_retention_ms)
        return expired

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _locked(self, group_id: str, *, create: bool) -> Iterator[GroupTxn | None]:
        now = self._clock()
        with self._catalog.begin() as session:
            group = lock_group(session, group_id=group_id, now_ms=now, create=create)
            if group is None:
                yield None
                return
            members = {
                m.member_id: m
                for m in session.scalars(select(MemberRow).where(MemberRow.group_id == group_id)).all()
            }
            rows = {
                (r.topic, r.partition): r
                for r in session.scalars(select(OwnershipRow).where(OwnershipRow.group_id == group_id)).all()
            }
            yield GroupTxn(session=session, group=group, now_ms=now, members=members, rows=rows)

    def _session_timeout(self, requested: int | None) -> int:
        if requested is None:
            default = max(DEFAULT_SESSION_TIMEOUT_MS, self.min_session_timeout_ms)
            return min(default, self.max_session_timeout_ms)
        if not self.min_session_timeout_ms <= requested <= self.max_session_timeout_ms:
            raise InvalidSessionTimeoutError(
                f"session_timeout_ms={requested} is outside [{self.min_session_timeout_ms}, "
                f"{self.max_session_timeout_ms}] (group.min/max.session.timeout.ms)",
                min_session_timeout_ms=self.min_session_timeout_ms,
                max_session_timeout_ms=self.max_session_timeout_ms,
            )
        return requested

    @staticmethod
    def _check_subscription(request: JoinRequest) -> None:
        if (request.topics is None) == (request.topic_pattern is None):
            raise InvalidParameterError("give exactly one of topics and topic_pattern")
        if request.topics is not None and not request.topics:
            raise InvalidParameterError("topics must name at least one topic")
        if request.topic_pattern is not None:
            compile_topic_pattern(request.topic_pattern)  # 422 42220 before anything is stored
        if request.assignor not in ASSIGNORS:
            raise InvalidParameterError(
                f"unknown assignor {request.assignor!r}; use one of {', '.join(sorted(ASSIGNORS))}"
            )
        if request.auto_offset_reset not in AUTO_OFFSET_RESETS:
            raise InvalidParameterError(f"auto_offset_reset must be one of {', '.join(AUTO_OFFSET_RESETS)}")

    @staticmethod
    def _check_partition(topics: Mapping[str, int], topic: str, partition: int) -> None:
        if topic not in topics:
            raise UnknownTopicError(f"topic {topic!r} does not exist")
        if not 0 <= partition < topics[topic]:
            raise UnknownPartitionError(f"topic {topic!r} has no partition {partition}")

    def _live_member(self, txn: GroupTxn | None, group_id: str, member_id: str) -> tuple[GroupTxn, MemberRow]:
        if txn is None:
            raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}; join again")
        settle.expire(txn)
        member = txn.members.get(member_id)
        if member is None:
            raise UnknownMemberError(f"group {group_id!r} has no member {member_id!r}; join again")
        return txn, member

    def _view(self, txn: GroupTxn, member: MemberRow) -> MemberView:
        return MemberView(
            group_id=txn.group.group_id,
            member_id=member.member_id,
            generation=txn.group.generation,
            state=txn.group.state,
            assignment=settle.owned(txn, member.member_id),
            revoking=settle.revoking(txn, member.member_id),
            heartbeat_interval_ms=heartbeat_interval_ms(member.session_timeout_ms),
            session_timeout_ms=member.session_timeout_ms,
            auto_offset_reset=member.auto_offset_reset,
        )

    @staticmethod
    def _committed_map(session: Session, group_id: str) -> dict[TopicPartition, int]:
        rows = session.execute(
            select(CommittedOffsetRow.topic, CommittedOffsetRow.partition, CommittedOffsetRow.offset).where(
                CommittedOffsetRow.group_id == group_id
            )
        ).all()
        return {(topic, partition): offset for topic, partition, offset in rows}

    @staticmethod
    def _committed_list(session: Session, group_id: str) -> list[CommittedOffset]:
        rows = session.scalars(
            select(CommittedOffsetRow)
            .where(CommittedOffsetRow.group_id == group_id)
            .order_by(CommittedOffsetRow.topic, CommittedOffsetRow.partition)
        ).all()
        return [CommittedOffset(r.topic, r.partition, r.offset, r.metadata_, r.committed_at_ms) for r in rows]
