"""``bench.streams_bench`` at a tiny scale against a real broker: every workload gives a figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_streams_bench_runs_every_workload() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.streams_bench",
            "--records",
            "300",
            "--repeat",
            "1",
            "--restore-mb",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for row in (
        "baseline",
        "passthrough topology",
        "count per key",
        "WordCount (lines/s",
        "restore of a 1 MiB",
    ):
        assert row in out.stdout, out.stdout
