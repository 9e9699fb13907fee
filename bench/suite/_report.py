"""Writes the "Comparative suite" section of docs/benchmarks.md and the PNG charts of docs/img/.

Only that section is rewritten (from its `## Comparative suite` heading to the next `## ` heading); the
sections other benchmarks write in the same file are left as they are.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt

from ._latency import PRODUCER_WORKERS
from ._model import Figure, Results
from ._scale import Scale

HEADING = "## Comparative suite"
_TIDELOG_PREFIX = "tidelog"


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio_cells(results: Results, figure: Figure) -> str:
    """For a tidelog figure: its median over each peer's in the same workload, case and metric."""
    if not figure.system.startswith(_TIDELOG_PREFIX) or not figure.samples:
        return ""
    cells = []
    for other in results.figures.values():
        if (
            other.workload == figure.workload
            and other.case == figure.case
            and other.metric == figure.metric
            and not other.system.startswith(_TIDELOG_PREFIX)
            and other.samples
            and other.summary.median > 0
        ):
            cells.append(f"{figure.summary.median / other.summary.median:.2f}\u00d7 {other.system}")
    return "; ".join(cells)


def _chart_bars(path: Path, title: str, figures: list[Figure], ylabel: str, *, log: bool = False) -> None:
    figures = [f for f in figures if f.samples]
    if not figures:
        return
    fig, ax = plt.subplots(figsize=(8, 4.2))
    medians = [f.summary.median for f in figures]
    lows = [f.summary.median - f.summary.low for f in figures]
    highs = [f.summary.high - f.summary.median for f in figures]
    colors = ["#1f77b4" if f.system.startswith(_TIDELOG_PREFIX) else "#999999" for f in figures]
    labels = [textwrap.fill(f.system, 18) for f in figures]
    ax.bar(range(len(figures)), medians, yerr=[lows, highs], capsize=4, color=colors)
    ax.set_xticks(range(len(figures)), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    for index, median in enumerate(medians):
        ax.annotate(_fmt(median), (index, median), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _chart_latency(path: Path, results: Results) -> None:
    by_system: dict[str, dict[str, float]] = defaultdict(dict)
    for figure in results.figures.values():
        if figure.workload.startswith("3.") and figure.samples:
            by_system[figure.system][figure.metric] = figure.summary.median
    if not by_system:
        return
    metrics = ["p50 ms", "p99 ms", "p99.9 ms", "ack p99 ms"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(metrics)
    systems = list(by_system)
    for offset, metric in enumerate(metrics):
        values = [by_system[system].get(metric, 0.0) for system in systems]
        ax.bar(
            [i + offset * width for i in range(len(systems))], values, width, label=metric.replace(" ms", "")
        )
    ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(systems))], systems, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("milliseconds (log scale)")
    ax.set_title("End-to-end latency, produce call to delivery (median of repetitions)", fontsize=10)
    ax.axhline(10.0, color="red", linestyle=":", linewidth=1, label="target p99 (SSE)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _chart_scaling(path: Path, results: Results) -> None:
    lines = {
        name.split(":", 1)[1]: points
        for name, points in results.series.items()
        if name.startswith("scaling:")
    }
    memory = results.series.get("memory", [])
    if not lines and not memory:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for partitions, points in lines.items():
        if points:
            left.plot(
                [p[0] for p in points], [p[1] for p in points], marker="o", label=f"{partitions} partition(s)"
            )
    left.set_xlabel("concurrent producers")
    producer_counts = sorted({int(p[0]) for points in lines.values() for p in points})
    if producer_counts:
        left.set_xticks(producer_counts)
    left.set_ylabel("records/s (acks=1)")
    left.set_title("Produce throughput by partitions and producers", fontsize=10)
    left.set_ylim(bottom=0)
    if lines:
        left.legend(fontsize=8)
    if memory:
        right.plot([m[0] / 1e6 for m in memory], [m[1] for m in memory], marker="o", color="#d62728")
    right.set_xlabel("records stored in one partition (millions)")
    right.set_ylabel("broker RSS (MiB)")
    right.set_ylim(0, max((m[1] for m in memory), default=1.0) * 1.25)
    right.set_title("Broker memory as data grows", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_charts(results: Results, image_dir: Path) -> list[tuple[str, str]]:
    """Write the PNGs; return (caption, file name) for each one written."""
    image_dir.mkdir(parents=True, exist_ok=True)
    by_workload: dict[tuple[str, str, str], list[Figure]] = defaultdict(list)
    for figure in results.figures.values():
        by_workload[(figure.workload, figure.case, figure.metric)].append(figure)
    written: list[tuple[str, str]] = []
    plan = [
        ("1. Produce", "records/s", "bench-produce.png", "Produce throughput"),
        ("1. Produce", "MB/s", "bench-produce-large.png", "Large-value produce against the disk"),
        ("2. Consume", "records/s", "bench-consume.png", "Consume throughput"),
        ("4. Scaling", "ms p50", "bench-random-fetch.png", "Fetch at a random offset"),
        ("5. Server ceiling", "records/s", "bench-ceiling.png", "Server ceiling (wrk)"),
    ]
    for workload, metric, name, caption in plan:
        for (w, case, m), figures in by_workload.items():
            if w == workload and m == metric and any(f.samples for f in figures):
                _chart_bars(image_dir / name, f"{workload}: {case} (median, min\u2013max)", figures, metric)
                written.append((caption, name))
                break
    if any(f.workload.startswith("3.") and f.samples for f in results.figures.values()):
        _chart_latency(image_dir / "bench-latency.png", results)
        written.append(("End-to-end latency", "bench-latency.png"))
    if results.series:
        _chart_scaling(image_dir / "bench-scaling.png", results)
        written.append(("Scaling and memory", "bench-scaling.png"))
    return written


def render_section(
    results: Results, scale: Scale, charts: list[tuple[str, str]], *, image_prefix: str = "img/"
) -> str:
    """The markdown of the section, from its heading to its end."""
    out: list[str] = [HEADING, ""]
    out.append(
        "<!-- Written by `make bench` (bench/__main__.py, bench/suite/): edit the generator, not this. -->"
    )
    out.append("")
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.append(
        f"Measured {when} by `make bench` (scale `{results.scale}`, {results.elapsed_s / 60:.1f} minutes): "
        "one fresh `tidelog serve` process with its own data directory, Redis and NATS JetStream on the same "
        "machine, every client in one Python process on loopback. Each workload runs its systems "
        "interleaved, A B A B, the starting system rotating each round; the table gives the median of the "
        "repetitions and their range. The machine is shared with other work, so absolute figures are "
        "noisy; the ratios, taken between runs made minutes apart in the same rounds, are what to read."
    )
    out.append("")
    out.append("### Machine and versions")
    out.append("")
    for key, value in results.machine.items():
        out.append(f"- {key}: {value}")
    for key, value in results.versions.items():
        out.append(f"- {key}: {value}")
    out.append("")
    out.append("### Durability, side by side")
    out.append("")
    out.append("| tidelog | what an acknowledgement means | peer setting with the same meaning |")
    out.append("| --- | --- | --- |")
    out.append(
        "| `acks=1` | appended to the partition's log (kernel page cache): survives a broker crash, not a "
        "power loss | JetStream file storage, 1 replica (the PubAck comes after the write to its file "
        'store; fsync on a timer). Redis here keeps nothing on disk (`appendonly no`, `save ""`): an XADD '
        "lives only in memory, weaker than `acks=1` |"
    )
    out.append(
        "| `acks=all` | fsynced (group commit shared by concurrent requests) before the answer | Redis with "
        "`appendonly yes` and `appendfsync always`: a redis-server of the suite's own on a free port (row "
        '"fsync always"), since the shared one keeps nothing on disk. The JetStream server runs as the '
        "machine starts it, syncing on its default timer, so it has no row here |"
    )
    out.append("")
    out.append("### Targets")
    out.append("")
    out.append("| target | measured | met |")
    out.append("| --- | --- | --- |")
    for verdict in results.verdicts():
        if verdict.value is None:
            out.append(f"| {verdict.target.name} | not measured ({verdict.why_missing}) | — |")
            continue
        unit = "\u00d7" if verdict.target.reference is not None else " ms"
        out.append(
            f"| {verdict.target.name} | {verdict.value:.2f}{unit} | {'yes' if verdict.met else '**no**'} |"
        )
    out.append("")
    out.append("### Every figure")
    out.append("")
    out.append("| workload | case | system | metric | median | min\u2013max | runs | tidelog / peer | note |")
    out.append("| --- | --- | --- | --- | ---: | --- | ---: | --- | --- |")
    for figure in results.figures.values():
        if not figure.samples:
            out.append(
                f"| {figure.workload} | {figure.case} | {figure.system} | {figure.metric} | — | — | 0 | | "
                f"{figure.note or 'not measured'} |"
            )
            continue
        summary = figure.summary
        out.append(
            f"| {figure.workload} | {figure.case} | {figure.system} | {figure.metric} | "
            f"{_fmt(summary.median)} | {_fmt(summary.low)}\u2013{_fmt(summary.high)} | {summary.n} | "
            f"{_ratio_cells(results, figure)} | {figure.note} |"
        )
    out.append("")
    if charts:
        out.append("### Charts")
        out.append("")
        for caption, name in charts:
            out.append(f"![{caption}]({image_prefix}{name})")
            out.append("")
    if results.profiles:
        out.append("### Where the time goes")
        out.append("")
        out.append(
            "py-spy sampled the broker process (200 Hz, `--nonblocking`) while the suite's Python client "
            "drove it. *self* is the share of samples in which the function itself was running, *total* the "
            "share in which it was anywhere on the stack (all threads; idle samples, such as the event loop "
            "waiting on its sockets, are left out as py-spy does by default)."
        )
        out.append("")
        for workload, rows in results.profiles.items():
            out.append(f"**{workload}**")
            out.append("")
            if not rows:
                out.append("No samples fell here.")
                out.append("")
                continue
            out.append("| function | self | total |")
            out.append("| --- | ---: | ---: |")
            for name, self_share, total_share in rows:
                out.append(f"| `{name}` | {self_share:.1f}% | {total_share:.1f}% |")
            out.append("")
    out.append("### What was scaled down, and how to run it")
    out.append("")
    out.append(
        "- The issue's sizes do not fit the 15-minute budget on a shared 2-core machine, so this run "
        f"(scale `{scale.name}`) produces {scale.records:,} records per repetition instead of 1,000,000 "
        f"(every loop is also capped at {scale.time_cap_s:.0f} s; the rate is what is compared), "
        f"{scale.large_records:,} \u00d7 {scale.large_value_size // 1024} KB records in batches of "
        f"{scale.large_batch:,}, grows one partition to {scale.big_partition_records:,} records instead of "
        f"10,000,000 and samples broker memory at {scale.memory_checkpoints} points along the way instead of "
        "up to 50,000,000. Both fetch-latency topics use `segment.bytes` = "
        f"{scale.segment_bytes // (1024 * 1024)} MiB so the big partition spans many segments, as a "
        "10,000,000-record one would with the default."
    )
    out.append(
        "- Latency runs use `acks=1` for tidelog (the peers' acknowledgements are not fsynced either) and "
        f"{scale.latency_count:,} records at {scale.latency_rate:,}/s per repetition, so p99.9 rests on the "
        f"{max(1, scale.latency_count // 1000)} slowest record(s) of each run. Every system gets the same "
        f"producer: {PRODUCER_WORKERS} connections sharing one fixed schedule (record i due at start + "
        "i/rate), so a slow answer does not hold back the records after it; the table says what rate each "
        "achieved."
    )
    out.append(
        "- Values are JSON objects whose encoding is exactly the stated size; every consumer decodes them "
        "back to Python objects, tidelog's fetch answer included, so each side does what a user's code does."
    )
    out.append(
        "- The server-ceiling runs need `wrk` (`apt-get install -y wrk` on Debian/Ubuntu); without it that "
        "workload is skipped and says so. `python -m bench --help` lists the options (scale, workloads, "
        "output)."
    )
    for note in results.notes:
        out.append(f"- {note}")
    if results.skipped:
        out.append("")
        out.append("Skipped in this run:")
        out.append("")
        for what, why in results.skipped:
            out.append(f"- {what}: {why}")
    out.append("")
    return "\n".join(out)


def write_section(doc: Path, section: str) -> None:
    """Replace (or append) the Comparative suite section of ``doc``, leaving every other section alone."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    if start is None:
        body = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        before = "\n".join(lines[:start]).rstrip("\n")
        after = "\n".join(lines[end:])
        body = (before + "\n\n" if before else "") + section + ("\n" + after if after else "")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(body.rstrip("\n") + "\n", encoding="utf-8")


HEADLINE_START = "<!-- bench-headline -->"
HEADLINE_END = "<!-- /bench-headline -->"


def headline(results: Results) -> str:
    """One paragraph of the measured ratios against their targets, for the README."""
    parts = []
    for verdict in results.verdicts():
        if verdict.value is None:
            continue
        unit = "\u00d7" if verdict.target.reference is not None else " ms"
        state = "met" if verdict.met else "missed"
        parts.append(f"{verdict.target.name}: **{verdict.value:.2f}{unit}** ({state})")
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return (
        f"Measured by `make bench` on {when}, medians of interleaved runs on one shared 2-core machine: "
        + "; ".join(parts)
        + ". Table, charts and profile: [docs/benchmarks.md](docs/benchmarks.md#comparative-suite)."
    )


def write_headline(readme: Path, text: str) -> bool:
    """Replace the text between the headline markers of ``readme``; False (and no change) without them."""
    if not readme.exists():
        return False
    content = readme.read_text(encoding="utf-8")
    start = content.find(HEADLINE_START)
    end = content.find(HEADLINE_END)
    if start < 0 or end < start:
        return False
    updated = content[: start + len(HEADLINE_START)] + "\n" + text + "\n" + content[end:]
    readme.write_text(updated, encoding="utf-8")
    return True
