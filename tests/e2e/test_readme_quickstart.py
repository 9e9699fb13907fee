"""The README's quickstart, run as written against a real broker: every ``sh`` block of the sections
from "Quickstart with curl" to "Configuration", in one bash session, with only the port changed
(``TIDELOG_URL`` for the CLI), the endless SSE commands given 5 s, and ``. .venv/bin/activate``
pointed at this interpreter's venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def _quickstart_script(port: int) -> str:
    text = README.read_text()
    section = text[text.index("## Quickstart with curl"):text.index("## Configuration")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) >= 4, "the quickstart lost its blocks"
    script = "\n".join(blocks).replace("localhost:8080", f"127.0.0.1:{port}")
    venv = Path(sys.executable).parent
    script = script.replace(". .venv/bin/activate", f'export PATH="{venv}:$PATH"')
    lines = []
    for line in script.splitlines():
        if line.startswith("curl -N ") or "--follow" in line:
            line = f"timeout 5 {line.split('#')[0].strip()} || true"  # endless by design
        lines.append(line)
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def test_the_quickstart_works_as_written(broker_process: BrokerProcess, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.fail("jq is missing: the README's quickstart uses it (apt-get install -y jq)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
    env["TIDELOG_URL"] = broker_process.url  # the CLI's default is the README's localhost:8080
    done = subprocess.run(["bash", "-c", _quickstart_script(broker_process.port)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert '{"name":"orders","partition_count":3}' in out.replace(" ", "").replace("\n", "")
    # the group poll saw both records, the commit and the leave answered 204, the lag is 0
    assert out.count('"key":"alice"') >= 2 and out.count('"key":"bob"') >= 2, out
    assert out.count("204\n") == 2, out
    assert '{"partition":0,"offset":2,"lag":0}' in out, out
    # the group SSE stream and the topic SSE stream delivered records
    assert out.count("event: record") >= 4, out
    assert "cli-demo" in out and "cli-readers" in out, out
    assert "Traceback" not in done.stderr, done.stderr
