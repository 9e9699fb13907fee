"""A small tmpfs mounted for a test (a disk that fills up for real); needs root.

Under ``CI=true`` a failed mount fails the test; elsewhere it skips it with the reason. The mount
is lazily unmounted at the end, even when a broker process still has files open on it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "mounted_tmpfs"]


@contextlib.contextmanager
def mounted_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    mount_point.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        message = f"cannot mount a tmpfs at {mount_point}: {result.stderr.strip() or result.returncode}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the full-disk tests must run)")
        pytest.skip(message)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    chunk = b"\0" * 65536
    with contextlib.suppress(OSError), open(path, "wb") as f:  # closing may fail too: the disk is full
        while True:
            f.write(chunk)
            f.flush()
