"""The storage benchmark runs end to end at a tiny scale, so it cannot rot (no figures asserted:
performance targets live in the benchmark itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.storage_bench import main


def test_storage_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = main(
        [
            "--records", "20000", "--segment-bytes", str(1 << 20), "--active-mib", "1",
            "--reads", "40", "--cold-reads", "3", "--dir", str(tmp_path),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    for line in ("append:", "unclean restart:", "sequential decoded read:", "raw batch read:", "random read"):
        assert line in out
    assert results["big_records"] >= 20_000
    assert results["full_scan_mib"] >= results["active_mib"]
    assert results["big_mem"] > 0
    assert list(tmp_path.iterdir()) == []  # the benchmark removed its partitions
