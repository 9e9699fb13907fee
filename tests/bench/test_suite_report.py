"""The suite's arithmetic and its document writer, without any process: percentiles, verdicts, sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.suite import SMOKE, Results, Summary, Target, percentile, render_section, write_section


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 99.9) == 100.0
    assert percentile([7.0], 99.9) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_is_median_and_range() -> None:
    assert Summary.of([3.0, 1.0, 2.0, 10.0]) == Summary(2.5, 1.0, 10.0, 4)


def _results() -> Results:
    results = Results(scale="test")
    results.figure("1. Produce", "c", "tidelog acks=1", "records/s").samples.extend([300.0, 310.0, 290.0])
    results.figure("1. Produce", "c", "Redis", "records/s").samples.extend([100.0, 90.0, 110.0])
    results.figure("3. Latency", "c", "tidelog SSE", "p99 ms", higher_is_better=False).samples.append(12.0)
    results.targets = [
        Target(
            "3x Redis",
            ("1. Produce", "c", "tidelog acks=1", "records/s"),
            ("1. Produce", "c", "Redis", "records/s"),
            3.0,
            True,
        ),
        Target(
            "4x Redis",
            ("1. Produce", "c", "tidelog acks=1", "records/s"),
            ("1. Produce", "c", "Redis", "records/s"),
            4.0,
            True,
        ),
        Target("p99 <= 10", ("3. Latency", "c", "tidelog SSE", "p99 ms"), None, 10.0, False),
        Target(
            "missing",
            ("1. Produce", "c", "tidelog acks=1", "records/s"),
            ("1. Produce", "c", "JetStream", "records/s"),
            10.0,
            True,
        ),
    ]
    return results


def test_verdicts_compare_medians() -> None:
    verdicts = {v.target.name: v for v in _results().verdicts()}
    assert verdicts["3x Redis"].value == pytest.approx(3.0) and verdicts["3x Redis"].met is True
    assert verdicts["4x Redis"].met is False
    assert verdicts["p99 <= 10"].value == 12.0 and verdicts["p99 <= 10"].met is False
    assert verdicts["missing"].value is None and verdicts["missing"].met is None


def test_section_replaces_only_itself(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Storage engine\n\nA\n\n## Comparative suite\n\nold figures\n\n"
        "## HTTP produce and fetch\n\nB\n",
        encoding="utf-8",
    )
    results = _results()
    write_section(doc, render_section(results, SMOKE, []))
    text = doc.read_text(encoding="utf-8")
    assert "old figures" not in text
    assert (
        text.index("## Storage engine") < text.index("## Comparative suite") < text.index("## HTTP produce")
    )
    assert "\n\nA\n" in text and text.rstrip().endswith("B")
    assert "3.00\u00d7 Redis" in text  # the ratio column
    assert "| p99 <= 10 | 12.00 ms | **no** |" in text
    write_section(doc, render_section(results, SMOKE, []))
    assert doc.read_text(encoding="utf-8").count("## Comparative suite") == 1


def test_section_is_appended_when_absent(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Storage engine\n\nA\n", encoding="utf-8")
    write_section(doc, render_section(_results(), SMOKE, []))
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\n## Storage engine\n\nA\n\n## Comparative suite")


def test_collapsed_stacks_are_summarised_by_self_and_total() -> None:
    from bench.suite._profile import summarize_collapsed

    text = (
        "run (asyncio/runners.py:10);handle (app/routes/records.py:5);encode (storage/records.py:9) 6\n"
        "run (asyncio/runners.py:10);handle (app/routes/records.py:7) 3\n"
        "run (asyncio/runners.py:12);select (selectors.py:1) 1\n"
        "garbage line\n"
    )
    hottest, own = summarize_collapsed(text)
    assert hottest[0] == ("encode (storage/records.py)", 60.0, 60.0)
    assert ("handle (app/routes/records.py)", 30.0, 90.0) in hottest
    assert [name for name, _, _ in own] == ["encode (storage/records.py)", "handle (app/routes/records.py)"]


def test_headline_goes_between_the_markers_only(tmp_path: Path) -> None:
    from bench.suite import headline, write_headline

    readme = tmp_path / "README.md"
    readme.write_text("# tidelog\n\nintro\n", encoding="utf-8")
    assert write_headline(readme, headline(_results())) is False
    assert readme.read_text(encoding="utf-8") == "# tidelog\n\nintro\n"
    readme.write_text("a\n<!-- bench-headline -->\nold\n<!-- /bench-headline -->\nb\n", encoding="utf-8")
    assert write_headline(readme, headline(_results())) is True
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and text.startswith("a\n<!-- bench-headline -->\n") and text.endswith("-->\nb\n")
    assert "3x Redis: **3.00\u00d7** (met)" in text and "p99 <= 10: **12.00 ms** (missed)" in text
