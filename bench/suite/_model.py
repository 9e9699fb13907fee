"""What the suite measures and how it summarises it: figures, comparisons with targets, skips."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank percentile ``q`` (0-100) of ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and range of the repetitions of one measurement."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("summary of no samples")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


@dataclass(slots=True)
class Figure:
    """Every repetition of one measurement of one system in one workload."""

    workload: str  # "Produce", "Consume", ...
    case: str  # "100 B values, batches of 1,000"
    system: str  # "tidelog acks=1", "Redis XADD (pipelined)", ...
    metric: str  # "records/s", "ms p99", "MB/s", ...
    samples: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    note: str = ""

    @property
    def summary(self) -> Summary:
        return Summary.of(self.samples)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.workload, self.case, self.system, self.metric)


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio a figure must reach against a reference figure (another system, or a fixed number)."""

    name: str
    subject: tuple[str, str, str, str]  # Figure.key of tidelog's figure
    reference: tuple[str, str, str, str] | None  # Figure.key of the peer's, or None for an absolute bound
    bound: float  # required ratio subject/reference, or the absolute limit
    at_least: bool  # True: ratio >= bound; False: ratio <= bound


@dataclass(frozen=True, slots=True)
class Verdict:
    target: Target
    value: float | None  # the measured ratio (or absolute figure); None when it could not be measured
    met: bool | None
    why_missing: str = ""


@dataclass(slots=True)
class Results:
    """Everything one run of the suite produced."""

    scale: str
    figures: dict[tuple[str, str, str, str], Figure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # chart data: name -> (x, y)
    profiles: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)  # workload -> rows
    elapsed_s: float = 0.0

    def figure(
        self,
        workload: str,
        case: str,
        system: str,
        metric: str,
        *,
        higher_is_better: bool = True,
        note: str = "",
    ) -> Figure:
        """Return the figure for this key, creating it empty on first use."""
        key = (workload, case, system, metric)
        found = self.figures.get(key)
        if found is None:
            found = Figure(workload, case, system, metric, higher_is_better=higher_is_better, note=note)
            self.figures[key] = found
        return found

    def skip(self, what: str, why: str) -> None:
        """Record (and print) why a part of the suite did not run."""
        print(f"  skipped: {what}: {why}", flush=True)
        self.skipped.append((what, why))

    def verdicts(self) -> list[Verdict]:
        out: list[Verdict] = []
        for target in self.targets:
            subject = self.figures.get(target.subject)
            if subject is None or not subject.samples:
                out.append(Verdict(target, None, None, "not measured"))
                continue
            value = subject.summary.median
            if target.reference is not None:
                reference = self.figures.get(target.reference)
                if reference is None or not reference.samples:
                    out.append(Verdict(target, None, None, f"{target.reference[2]} not measured"))
                    continue
                denominator = reference.summary.median
                if denominator == 0:
                    out.append(Verdict(target, None, None, "reference measured as zero"))
                    continue
                value = value / denominator
            met = value >= target.bound if target.at_least else value <= target.bound
            out.append(Verdict(target, value, met))
        return out
