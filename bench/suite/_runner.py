"""The interleaved A B A B runner.

The machine is shared, so its speed drifts during a run. Measuring every system once per round, rounds
repeated, spreads that drift over all systems alike: the ratio of the medians holds even when the absolute
figures move. Each round starts with a different system (a rotation), so no system always runs first,
right after a pause, or always last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._model import Figure


@dataclass(frozen=True, slots=True)
class Contender:
    """One side of a comparison: a measurement that returns one sample per call, and where it goes."""

    figure: Figure
    measure: Callable[[], float]


def interleave(contenders: Sequence[Contender], repetitions: int, *, label: str = "") -> None:
    """Run every contender ``repetitions`` times, round by round, appending a sample each time.

    A contender that raises is reported and dropped from later rounds; the others go on.
    """
    alive = list(contenders)
    show_case = len({c.figure.case for c in contenders}) > 1
    for round_index in range(repetitions):
        if not alive:
            return
        shift = round_index % len(alive)
        for contender in alive[shift:] + alive[:shift]:
            started = time.perf_counter()
            try:
                sample = contender.measure()
            except Exception as exc:
                print(f"  {contender.figure.system}: failed: {exc!r}", flush=True)
                contender.figure.note = f"failed: {type(exc).__name__}: {exc}"[:200]
                alive = [c for c in alive if c is not contender]
                continue
            contender.figure.samples.append(sample)
            took = time.perf_counter() - started
            name = (
                f"{contender.figure.case} / {contender.figure.system}"
                if show_case
                else contender.figure.system
            )
            print(
                f"  {label}[{round_index + 1}/{repetitions}] {name}: "
                f"{sample:,.2f} {contender.figure.metric} ({took:.1f} s)",
                flush=True,
            )
