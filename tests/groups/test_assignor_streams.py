"""The ``streams`` assignor: partition numbers stay together, balanced, and sticky (hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from app.groups.assignors import MemberInfo, assign, is_cooperative

topic_counts = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=8), min_size=1
)


def members_of(n: int, topics: frozenset[str]) -> list[MemberInfo]:
    return [MemberInfo(f"m{i}", None, topics) for i in range(n)]


def partitions_of(counts: dict[str, int]) -> list[tuple[str, int]]:
    return [(t, p) for t, n in counts.items() for p in range(n)]


@given(counts=topic_counts, n=st.integers(min_value=1, max_value=5))
def test_one_owner_per_partition_number_and_balanced(counts: dict[str, int], n: int) -> None:
    members = members_of(n, frozenset(counts))
    result = assign("streams", members, partitions_of(counts))
    assert set(result) == set(partitions_of(counts))
    owner_of_number: dict[int, str] = {}
    for (_, p), owner in result.items():
        assert owner_of_number.setdefault(p, owner) == owner, "a task's partitions stay together"
    loads = Counter(owner_of_number.values())
    loads.update({m.member_id: 0 for m in members})
    assert max(loads.values()) - min(loads.values()) <= 1


@given(counts=topic_counts, n=st.integers(min_value=1, max_value=4))
def test_sticky_a_joining_member_only_takes_tasks(counts: dict[str, int], n: int) -> None:
    topics = frozenset(counts)
    before = assign("streams", members_of(n, topics), partitions_of(counts))
    again = assign("streams", members_of(n, topics), partitions_of(counts), before)
    assert again == before
    after = assign("streams", members_of(n + 1, topics), partitions_of(counts), before)
    moved = {tp for tp in before if after[tp] != before[tp]}
    assert all(after[tp] == f"m{n}" for tp in moved), "only the newcomer receives tasks"


def test_a_member_missing_a_topic_of_the_task_does_not_get_it() -> None:
    members = [MemberInfo("m0", None, frozenset({"a", "b"})), MemberInfo("m1", None, frozenset({"a"}))]
    result = assign("streams", members, [("a", 0), ("b", 0), ("a", 1)])
    assert result[("a", 0)] == result[("b", 0)] == "m0"
    assert result[("a", 1)] == "m1"
    assert is_cooperative("streams")
