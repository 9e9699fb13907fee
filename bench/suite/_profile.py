"""Where the broker's time goes: py-spy samples the broker process while a workload runs.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;...;leaf count"); the suite sums the
samples per function, by itself (the leaf frame) and in total (anywhere on the stack), so the report can
name the hot spots.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy_executable() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    """`encode (storage/_codec.py:120)` -> `encode (storage/_codec.py)`, paths shortened to the package."""
    frame = _LINE_NUMBER.sub(")", frame.strip())
    for marker in ("/site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            path = tail.split(marker, 1)[1] if marker in tail else tail
            frame = f"{head}({path}"
            break
    return frame


Rows = list[tuple[str, float, float]]
# The codec is the client distribution's (client/tidelog/_codec, or tidelog/_codec when installed).
OWN_PACKAGES = ("app/", "storage/", "client/tidelog/", "tidelog/")


def _is_own(name: str) -> bool:
    path = name.rpartition("(")[2]
    return path.startswith(OWN_PACKAGES)


def summarize_collapsed(text: str, *, top: int = 12) -> tuple[Rows, Rows]:
    """Return (function, self %, total %) rows: the most self samples anywhere, and among tidelog's own
    functions (app/, storage/)."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    grand_total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        grand_total += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count
    if grand_total == 0:
        return [], []

    def row(name: str) -> tuple[str, float, float]:
        return name, 100.0 * self_samples[name] / grand_total, 100.0 * total_samples[name] / grand_total

    hottest = [row(name) for name, _ in self_samples.most_common(top)]
    own_names = sorted(
        (name for name in total_samples if _is_own(name)),
        key=lambda name: (self_samples[name], total_samples[name]),
        reverse=True,
    )
    own = [row(name) for name in own_names[:top]]
    return hottest, own


def profile_while(
    pid: int, seconds: float, workdir: Path, name: str, load: Callable[[], object]
) -> tuple[Rows, Rows]:
    """Sample ``pid`` for ``seconds`` while ``load()`` runs; return the summaries of summarize_collapsed."""
    executable = py_spy_executable()
    if executable is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    output = workdir / f"profile-{name}.txt"
    command = [
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(output),
    ]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        load()
    finally:
        try:
            _, stderr = recorder.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, stderr = recorder.communicate()
    if recorder.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {stderr.decode(errors='replace')[-300:]}")
    return summarize_collapsed(output.read_text(encoding="utf-8", errors="replace"))
