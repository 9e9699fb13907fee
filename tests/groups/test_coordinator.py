"""The coordinator's assignors, offset retention, and its locking under concurrent operations
(threads standing in for broker processes) on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.catalog.db import Catalog
from app.errors_base import NotReadyError, OverloadedError
from app.groups.assignors import MemberInfo, assign
from app.groups.coordinator import GroupCoordinator
from app.groups.errors import UnknownGroupError
from app.groups.model import JoinRequest, OffsetCommit
from app.groups.service import GroupService


def _members(*names: str, topics: tuple[str, ...] = ("t0", "t1")) -> list[MemberInfo]:
    return [MemberInfo(member_id=name, instance_id=None, topics=frozenset(topics)) for name in names]


def _by_member(assignment: Mapping[tuple[str, int], str]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for tp, member in sorted(assignment.items()):
        out.setdefault(member, []).append(tp)
    return out


PARTITIONS = [(t, p) for t in ("t0", "t1") for p in range(3)]


def test_range_matches_kafka() -> None:
    # Kafka's RangeAssignor javadoc: C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
    result = _by_member(assign("range", _members("C0", "C1"), PARTITIONS))
    assert result == {
        "C0": [("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)],
        "C1": [("t0", 2), ("t1", 2)],
    }


def test_roundrobin_matches_kafka() -> None:
    # Kafka's RoundRobinAssignor javadoc: C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2].
    result = _by_member(assign("roundrobin", _members("C0", "C1"), PARTITIONS))
    assert result == {"C0": [("t0", 0), ("t0", 2), ("t1", 1)], "C1": [("t0", 1), ("t1", 0), ("t1", 2)]}


def test_roundrobin_skips_members_not_subscribed() -> None:
    members = _members("A", topics=("t0",)) + _members("B", topics=("t0", "t1"))
    result = _by_member(assign("roundrobin", members, PARTITIONS))
    assert result["A"] == [("t0", 0), ("t0", 2)]
    assert ("t1", 0) in result["B"] and len(result["B"]) == 4


def test_sticky_moves_only_what_balance_needs() -> None:
    current = {tp: "A" for tp in PARTITIONS}
    result = assign("cooperative-sticky", _members("A", "B"), PARTITIONS, current)
    moved = [tp for tp in PARTITIONS if result[tp] != current[tp]]
    assert len(moved) == 3 and all(result[tp] == "B" for tp in moved)
    # Adding a third member moves exactly one partition away from each of the others.
    again = assign("cooperative-sticky", _members("A", "B", "C"), PARTITIONS, result)
    assert sum(1 for tp in PARTITIONS if again[tp] != result[tp]) == 2
    assert sorted(len(v) for v in _by_member(again).values()) == [2, 2, 2]
    # Static members sort by instance id, so a restarted instance keeps its place.
    static = [MemberInfo("m-2", "a", frozenset({"t0"})), MemberInfo("m-1", "b", frozenset({"t0"}))]
    ranged = _by_member(assign("range", static, [("t0", 0), ("t0", 1), ("t0", 2)]))
    assert ranged["m-2"] == [("t0", 0), ("t0", 1)]


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    yield catalog
    catalog.close()


def _lookup(_session: Session) -> Mapping[str, int]:
    return {"t": 8}


def test_offsets_of_an_empty_group_expire(sqlite_catalog: Catalog) -> None:
    now = [1_000_000]
    coordinator = GroupCoordinator(
        sqlite_catalog, offsets_retention_ms=60_000, topic_lookup=_lookup, clock=lambda: now[0]
    )
    view = coordinator.join("g", JoinRequest(topics=("t",), session_timeout_ms=10_000))
    coordinator.commit("g", [OffsetCommit("t", 0, 5)], member_id=view.member_id, generation=view.generation)
    now[0] += 120_000  # the member's session ends; offsets are kept while the group had a member
    coordinator.sweep()
    assert coordinator.describe("g").state == "Empty"
    assert [c.offset for c in coordinator.committed("g")] == [5]
    now[0] += 59_000
    coordinator.sweep()
    assert [c.offset for c in coordinator.committed("g")] == [5]
    now[0] += 2_000  # offsets.retention.minutes after the group became empty
    coordinator.sweep()
    assert coordinator.committed("g") == []
    assert coordinator.describe("g").state == "Dead"
    coordinator.delete("g")
    with pytest.raises(UnknownGroupError):
        coordinator.describe("g")


def _concurrent_joins(catalog: Catalog, threads: int) -> None:
    coordinator = GroupCoordinator(catalog, min_session_timeout_ms=100, topic_lookup=_lookup)
    barrier = threading.Barrier(threads)
    views = []
    errors: list[BaseException] = []

    def join() -> None:
        try:
            barrier.wait()
            views.append(coordinator.join("race", JoinRequest(topics=("t",), session_timeout_ms=30_000)))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=join) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors, errors
    # Every join bumped the generation once, in some serial order: no two saw the same generation.
    assert sorted(v.generation for v in views) == list(range(1, threads + 1))
    description = coordinator.describe("race")
    owned = [tp for m in description.members for tp in m.assignment + m.revoking]
    assert sorted(owned) == [("t", p) for p in range(8)]


def test_concurrent_joins_serialise_on_sqlite(sqlite_catalog: Catalog) -> None:
    _concurrent_joins(sqlite_catalog, 6)


@pytest.mark.postgres
def test_concurrent_joins_serialise_on_postgres(pg_url: str) -> None:
    catalog = Catalog(pg_url)
    try:
        catalog.migrate()
        _concurrent_joins(catalog, 6)
    finally:
        catalog.close()


async def test_a_busy_catalog_is_a_retriable_503() -> None:
    def locked() -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))

    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with pytest.raises(OverloadedError):
        await GroupService._run(locked)
    with pytest.raises(NotReadyError):
        await GroupService._run(unreachable)
