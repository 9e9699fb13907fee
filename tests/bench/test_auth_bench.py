"""``bench.auth_bench`` at a tiny scale: every case (off, control, key, Basic, JWT) gives a figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_auth_bench_measures_every_case() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.auth_bench", "--rounds", "1", "--seconds", "0.2", "--batch", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for row in ("| off |", "| off (control broker) |", "| API key |", "| Basic |", "| JWT (RS256) |"):
        line = next(line for line in out.stdout.splitlines() if line.startswith(row))
        assert "µs" in line or row.startswith("| off")
