"""Which worker runs which task: a pure function from the catalog's state to the changes to make.

The model is Kafka Connect's incremental cooperative rebalancing (KIP-415), with the catalog as the
coordinator instead of a group leader:

1. A task whose connector is STOPPED, or whose worker's lease ran out, is unassigned (a dead
   worker's tasks become free as soon as its lease expires: ``connect_session_timeout_ms``).
2. A free task goes to the least-loaded live worker, but only once no live worker reports it as
   still running: a task is never run twice on purpose (a revoked task is stopped first).
3. Balance: while the most-loaded worker has two tasks more than the least-loaded one, one task
   of the most-loaded is revoked (unassigned); step 2 gives it to the other worker once the first
   one reported it stopped. Only the tasks that must move move; every other task keeps running.

Each new assignment gets the next ``generation`` of its task: reports and offset commits carry it,
and an older one is refused (a zombie cannot overwrite the offsets of its successor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

__all__ = ["TaskSlot", "assign"]

TaskKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TaskSlot:
    """One task as the assignment sees it."""

    key: TaskKey
    worker_id: str | None
    #: False when the connector is STOPPED: the task must run nowhere.
    wanted: bool


def assign(tasks: Sequence[TaskSlot], live_workers: Mapping[str, Set[TaskKey]]) -> dict[TaskKey, str | None]:
    """Gives the tasks whose worker changes, mapped to their new worker (``None``: unassigned).

    ``live_workers`` maps each worker whose lease is current to the tasks it reported running.
    """
    changes: dict[TaskKey, str | None] = {}
    owner: dict[TaskKey, str | None] = {}
    for task in tasks:
        worker = task.worker_id
        if worker is not None and (not task.wanted or worker not in live_workers):
            changes[task.key] = None
            worker = None
        owner[task.key] = worker
    if not live_workers:
        return changes
    load = {worker: 0 for worker in live_workers}
    for worker in owner.values():
        if worker is not None:
            load[worker] += 1
    still_running = {key: worker for worker, keys in live_workers.items() for key in keys}
    for task in sorted(tasks, key=lambda t: t.key):
        if not task.wanted or owner[task.key] is not None:
            continue
        target = min(sorted(load), key=lambda w: load[w])
        running_on = still_running.get(task.key)
        if running_on is not None and running_on != target:
            continue  # wait until the worker that ran it reports it stopped
        owner[task.key] = target
        load[target] += 1
        changes[task.key] = target
    busiest = max(sorted(load), key=lambda w: load[w])
    idlest = min(sorted(load), key=lambda w: load[w])
    if load[busiest] - load[idlest] > 1:
        movable = sorted(k for k, w in owner.items() if w == busiest and changes.get(k) != busiest)
        if movable:
            changes[movable[-1]] = None
    return changes
