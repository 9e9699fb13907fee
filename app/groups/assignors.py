"""Partition assignors: who owns which partition, computed by the coordinator for the whole group.

Each assignor is a pure function of the members (sorted by their static ``instance_id`` when they have
one, else by member id, so static members keep their place across restarts), the partitions each may
own (a member only gets partitions of topics it subscribes to) and, for the sticky assignor, the
current owners:

- ``range`` (Kafka's RangeAssignor): per topic, partitions split into contiguous ranges, the first
  ``partitions % members`` members getting one more.
- ``roundrobin`` (RoundRobinAssignor): every partition of every topic, in (topic, partition) order,
  dealt to the subscribed members in turn.
- ``cooperative-sticky`` (CooperativeStickyAssignor, KIP-429): keeps every partition where it is unless
  the balance needs it elsewhere; only the partitions that must move change owner, and the
  coordinator moves them in two phases (revoke, then assign).
- ``streams`` (the task assignment of Kafka's StreamsPartitionAssignor): ``cooperative-sticky`` over
  *partition numbers*: partition ``p`` of every subscribed topic goes to one member, so the
  co-partitioned inputs of a stream task (a join's two sides, a stream and its table) stay together,
  and a task keeps its member across rebalances unless the balance needs it elsewhere (no restore
  from the changelog for tasks that did not move). A member may own number ``p`` only if it
  subscribes to every topic that has a partition ``p``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ASSIGNORS", "Assignment", "MemberInfo", "TopicPartition", "assign", "is_cooperative"]

TopicPartition = tuple[str, int]
#: partition → owning member id.
Assignment = dict[TopicPartition, str]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    member_id: str
    instance_id: str | None
    topics: frozenset[str]

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.instance_id or self.member_id, self.member_id)


def _range(members: Sequence[MemberInfo], partitions: Sequence[TopicPartition], _: Assignment) -> Assignment:
    result: Assignment = {}
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    for topic in sorted(by_topic):
        numbers = sorted(by_topic[topic])
        subscribed = [m for m in members if topic in m.topics]
        if not subscribed:
            continue
        per_member, extra = divmod(len(numbers), len(subscribed))
        start = 0
        for index, member in enumerate(subscribed):
            count = per_member + (1 if index < extra else 0)
            for partition in numbers[start : start + count]:
                result[(topic, partition)] = member.member_id
            start += count
    return result


def _roundrobin(
    members: Sequence[MemberInfo], partitions: Sequence[TopicPartition], _: Assignment
) -> Assignment:
    result: Assignment = {}
    if not members:
        return result
    turn = 0
    for topic, partition in sorted(partitions):
        # The next member in the circle that subscribes to this topic (Kafka skips the others).
        for step in range(len(members)):
            member = members[(turn + step) % len(members)]
            if topic in member.topics:
                result[(topic, partition)] = member.member_id
                turn = (turn + step + 1) % len(members)
                break
    return result


def _cooperative_sticky(
    members: Sequence[MemberInfo], partitions: Sequence[TopicPartition], current: Assignment
) -> Assignment:
    by_id = {m.member_id: m for m in members}
    order = {m.member_id: index for index, m in enumerate(members)}
    owned: dict[str, list[TopicPartition]] = {m.member_id: [] for m in members}
    result: Assignment = {}
    unassigned: list[TopicPartition] = []
    for tp in sorted(partitions):
        owner = current.get(tp)
        if owner is not None and owner in by_id and tp[0] in by_id[owner].topics:
            result[tp] = owner
            owned[owner].append(tp)
        else:
            unassigned.append(tp)

    def load(member_id: str) -> tuple[int, int]:
        return (len(owned[member_id]), order[member_id])

    for tp in unassigned:
        eligible = [m.member_id for m in members if tp[0] in m.topics]
        if not eligible:
            continue
        chosen = min(eligible, key=load)
        result[tp] = chosen
        owned[chosen].append(tp)

    # Move one partition at a time from the most to the least loaded member that may own it, until
    # no move narrows the spread: each move lowers the sum of squared loads, so this ends; the bound
    # is a guard, not a tuning knob.
    for _ in range(len(partitions) * max(1, len(members)) + 1):
        moved = False
        for donor in sorted(owned, key=load, reverse=True):
            for tp in sorted(owned[donor], reverse=True):
                eligible = [m.member_id for m in members if tp[0] in m.topics and m.member_id != donor]
                if not eligible:
                    continue
                receiver = min(eligible, key=load)
                if len(owned[donor]) - len(owned[receiver]) >= 2:
                    owned[donor].remove(tp)
                    owned[receiver].append(tp)
                    result[tp] = receiver
                    moved = True
                    break
            if moved:
                break
        if not moved:
            break
    return result


def _streams(
    members: Sequence[MemberInfo], partitions: Sequence[TopicPartition], current: Assignment
) -> Assignment:
    units: dict[int, list[TopicPartition]] = {}
    for tp in partitions:
        units.setdefault(tp[1], []).append(tp)
    # One pseudo topic per set of topics a partition number spans; a member is eligible for it only
    # when it subscribes to all of them.
    unit_topic = {p: ",".join(sorted({t for t, _ in tps})) for p, tps in units.items()}
    pseudo_members = [
        MemberInfo(
            m.member_id,
            m.instance_id,
            frozenset(name for p, name in unit_topic.items() if all(t in m.topics for t, _ in units[p])),
        )
        for m in members
    ]
    pseudo_current: Assignment = {}
    for p, tps in units.items():
        owners = [current[tp] for tp in tps if tp in current]
        if owners:
            # The member that already owns most of the task keeps it.
            pseudo_current[(unit_topic[p], p)] = max(set(owners), key=lambda m: (owners.count(m), m))
    pseudo = _cooperative_sticky(pseudo_members, [(unit_topic[p], p) for p in units], pseudo_current)
    return {tp: owner for (_, p), owner in pseudo.items() for tp in units[p]}


AssignorFn = Callable[[Sequence[MemberInfo], Sequence[TopicPartition], Assignment], Assignment]

ASSIGNORS: Mapping[str, AssignorFn] = {
    "range": _range,
    "roundrobin": _roundrobin,
    "cooperative-sticky": _cooperative_sticky,
    "streams": _streams,
}


def is_cooperative(name: str) -> bool:
    """True for assignors whose moved partitions are revoked before they are reassigned."""
    return name in ("cooperative-sticky", "streams")


def assign(
    name: str,
    members: Sequence[MemberInfo],
    partitions: Sequence[TopicPartition],
    current: Assignment | None = None,
) -> Assignment:
    """The assignment of ``partitions`` to ``members`` by the assignor called ``name``.

    Every partition of a topic that at least one member subscribes to gets exactly one owner.
    """
    ordered = sorted(members, key=lambda m: m.sort_key)
    return ASSIGNORS[name](ordered, list(partitions), dict(current or {}))
