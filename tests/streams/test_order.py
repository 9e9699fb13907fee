"""A task's record order across its inputs: oldest head first, and max.task.idle.ms (KIP-353)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidelog.streams._task import next_input


def test_the_oldest_head_goes_first_and_ties_go_by_partition() -> None:
    heads = {("b", 0): 5, ("a", 0): 5, ("c", 0): 3}
    assert next_input(heads, 3, idle_since=None, now=0.0, max_idle_s=0.0) == (("c", 0), None)
    del heads[("c", 0)]
    assert next_input(heads, 3, idle_since=None, now=0.0, max_idle_s=0.0)[0] == ("a", 0)


def test_an_empty_input_is_waited_for_up_to_max_task_idle() -> None:
    heads = {("a", 0): 10}
    # max.task.idle.ms = 0: go on without the empty input at once.
    assert next_input(heads, 2, idle_since=None, now=100.0, max_idle_s=0.0) == (("a", 0), None)
    # 0.5 s: wait, then go on once the wait has lasted that long.
    chosen, since = next_input(heads, 2, idle_since=None, now=100.0, max_idle_s=0.5)
    assert (chosen, since) == (None, 100.0)
    assert next_input(heads, 2, idle_since=since, now=100.3, max_idle_s=0.5) == (None, 100.0)
    assert next_input(heads, 2, idle_since=since, now=100.5, max_idle_s=0.5) == (("a", 0), 100.0)
    # Both inputs have records again: the wait starts afresh the next time one runs dry.
    both = {("a", 0): 11, ("b", 0): 12}
    assert next_input(both, 2, idle_since=since, now=101.0, max_idle_s=0.5) == (("a", 0), None)
    assert next_input({}, 2, idle_since=since, now=101.0, max_idle_s=0.5) == (None, None)


@given(st.lists(st.lists(st.integers(min_value=0, max_value=50), max_size=8), min_size=1, max_size=4))
def test_draining_buffers_processes_records_in_timestamp_order(inputs: list[list[int]]) -> None:
    """With every input's buffer already sorted (a partition is in timestamp order here), the merge
    is the sorted sequence: what a task would see if the records had arrived in one stream."""
    buffers = {("t", i): sorted(stamps) for i, stamps in enumerate(inputs)}
    out = []
    while True:
        heads = {tp: buf[0] for tp, buf in buffers.items() if buf}
        tp, _ = next_input(heads, len(buffers), idle_since=None, now=0.0, max_idle_s=0.0)
        if tp is None:
            break
        out.append(buffers[tp].pop(0))
    assert out == sorted(t for stamps in inputs for t in stamps)


def test_streams_uses_only_the_public_client() -> None:
    """tidelog.streams builds on the client's public names, never on its private modules or the broker."""
    import ast
    from pathlib import Path

    import tidelog.streams

    package = Path(tidelog.streams.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top, _, rest = node.module.partition(".")
                if top in ("app", "storage", "migrations") or (
                    top == "tidelog" and rest and not rest.startswith("streams")
                ):
                    offenders.append(f"{path.name}: {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}: {a.name}" for a in node.names if a.name.split(".")[0] in ("app", "storage")
                ]
    assert offenders == []
