"""The disk's sequential write bandwidth as `dd ... conv=fdatasync` measures it, beside the broker's data."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

_RATE = re.compile(r"([\d.,]+)\s*([kMG]?B)/s")
_UNITS = {"B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def dd_write_mb_per_s(directory: Path, size_mb: int) -> float:
    """Write ``size_mb`` MiB of zeros, one fdatasync at the end; return MB/s (10^6 bytes) as dd reports it."""
    if shutil.which("dd") is None:
        raise RuntimeError("dd not found")
    target = directory / "dd-bandwidth.tmp"
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size_mb}", "conv=fdatasync"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    finally:
        elapsed = time.perf_counter() - started
        target.unlink(missing_ok=True)
    found = _RATE.findall(done.stderr)
    if found:
        number, unit = found[-1]
        return float(number.replace(",", ".")) * _UNITS[unit] / 1e6
    return size_mb * 1024 * 1024 / elapsed / 1e6
