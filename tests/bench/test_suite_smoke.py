"""The comparative suite's machinery at a tiny scale, against a real broker process and the real peers.

Keeps `make bench` from rotting between the runs that write docs/benchmarks.md: every workload runs with a
few thousand records, the tidelog side must produce figures, and a peer that does not answer is skipped
with a printed reason (the suite records why).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suite import SMOKE, Results, Suite, render_section, write_charts, write_section

pytestmark = pytest.mark.e2e

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    workdir = tmp_path_factory.mktemp("bench-smoke")
    return Suite(SMOKE, workdir=workdir, profile=True).run()


def _tidelog_figures(results: Results) -> list[tuple[str, str, str, str]]:
    return [key for key in results.figures if key[2].startswith("tidelog") or key[0].startswith("4.")]


def test_every_tidelog_workload_produced_figures(smoke_results: Results) -> None:
    failures = [(what, why) for what, why in smoke_results.skipped if why.startswith("failed")]
    assert not failures
    workloads = {key[0] for key in _tidelog_figures(smoke_results)}
    assert workloads >= {"1. Produce", "2. Consume", "3. End-to-end latency", "4. Scaling"}
    for key in _tidelog_figures(smoke_results):
        figure = smoke_results.figures[key]
        assert figure.samples, f"{key}: {figure.note or 'no samples'}"
        assert all(sample > 0 for sample in figure.samples), key
    produce = smoke_results.figures[
        ("1. Produce", "100 B values, batches of 1,000", "tidelog acks=1", "records/s")
    ]
    assert len(produce.samples) == SMOKE.repetitions
    assert smoke_results.series["memory"], "broker memory was not sampled as the partition grew"


def test_peers_measured_or_skipped_with_a_reason(smoke_results: Results) -> None:
    skipped = " ".join(what for what, _ in smoke_results.skipped)
    for peer, marker in (("Redis", "Redis"), ("JetStream", "NATS")):
        figures = [f for f in smoke_results.figures.values() if peer in f.system]
        if marker in skipped:
            print(f"{peer}: skipped: {[why for what, why in smoke_results.skipped if marker in what]}")
            continue
        assert figures, f"{peer} answered but has no figures"
        for figure in figures:
            assert figure.samples, f"{figure.key}: {figure.note or 'no samples'}"


def test_targets_are_evaluated(smoke_results: Results) -> None:
    verdicts = {verdict.target.name: verdict for verdict in smoke_results.verdicts()}
    sse = next(v for name, v in verdicts.items() if "SSE" in name)
    assert sse.value is not None and sse.value > 0
    fetch = next(v for name, v in verdicts.items() if "random-offset" in name)
    assert fetch.value is not None and fetch.value > 0


def test_ceiling_runs_under_wrk_or_says_why_not(smoke_results: Results) -> None:
    ceiling = [f for f in smoke_results.figures.values() if f.workload.startswith("5.")]
    if not ceiling:
        reasons = [why for what, why in smoke_results.skipped if what.startswith("5.")]
        assert reasons and "wrk" in reasons[0]
        print(f"server ceiling skipped: {reasons[0]}")
        return
    for figure in ceiling:
        assert figure.samples, f"{figure.key}: {figure.note}"


def test_report_and_charts_are_written(smoke_results: Results, tmp_path: Path) -> None:
    images = tmp_path / "img"
    charts = write_charts(smoke_results, images)
    assert {name for _, name in charts} >= {"bench-produce.png", "bench-consume.png", "bench-latency.png"}
    for _, name in charts:
        assert (images / name).read_bytes().startswith(PNG_MAGIC), name
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Storage engine\n\nkept as is\n", encoding="utf-8")
    write_section(doc, render_section(smoke_results, SMOKE, charts))
    text = doc.read_text(encoding="utf-8")
    assert "## Storage engine\n\nkept as is" in text
    assert "## Comparative suite" in text and "| tidelog acks=1 |" not in text.split("### Every figure")[0]
    assert "tidelog acks=1" in text.split("### Every figure")[1]
