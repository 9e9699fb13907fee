"""The server's ceiling: `wrk` posts one prepared produce body over and over, no Python client involved.

wrk comes from the distribution (`apt-get install -y wrk`); without it this part is skipped with a reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """\
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    non_2xx: int
    errors: str


def wrk_available() -> str | None:
    """Return None when wrk can run, else why not."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install -y wrk)"
    return None


def run_wrk(url: str, body: bytes, workdir: Path, *, seconds: float, connections: int = 4) -> WrkResult:
    """POST ``body`` to ``url`` for ``seconds`` on ``connections`` keep-alive connections, one wrk thread."""
    body_path = workdir / "wrk-body.json"
    body_path.write_bytes(body)
    script_path = workdir / "wrk-post.lua"
    script_path.write_text(_SCRIPT.format(body=body_path), encoding="utf-8")
    duration = max(1, round(seconds))
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(script_path),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if rate is None:
        raise RuntimeError(f"unexpected wrk output: {done.stdout[-500:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", done.stdout)
    errors = re.search(r"Socket errors:.*", done.stdout)
    return WrkResult(
        float(rate.group(1)), int(non_2xx.group(1)) if non_2xx else 0, errors.group(0) if errors else ""
    )
