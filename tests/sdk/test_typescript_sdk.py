"""TypeScript clients generated from ``openapi/openapi.json`` type-check strictly and work, with no casts.

``tests/sdk/ts`` holds a pinned npm project (package.json + package-lock.json: TypeScript 5,
``@hey-api/openapi-ts``, ``openapi-typescript`` + ``openapi-fetch``, ``eventsource``) and a program
(``program.ts``, ``hey-steps.ts``). The test copies them to a temporary directory, installs the
packages there with ``npm ci``, generates both clients from the committed spec, type-checks with
``tsc --noEmit --strict`` and runs the program against a real broker process: create a topic,
produce with headers, fetch, join a group from the earliest offset, poll, commit, read the committed
offsets, leave, read SSE events and branch on a problem+json ``error_code`` by its enum name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "ts"
SPEC = ROOT / "openapi" / "openapi.json"
PROJECT_FILES = ("package.json", "package-lock.json", "tsconfig.json", "openapi-ts.config.mjs")
PROGRAM_FILES = ("program.ts", "hey-steps.ts")
# A cast (`x as T`, `<T>x`) or an `any` would hide a spec that generators cannot type.
_ESCAPES = re.compile(r" as |<any>|: any\b|\bany\[\]")


def test_the_typescript_program_has_no_casts_and_no_any() -> None:
    for name in PROGRAM_FILES:
        text = (PROJECT / name).read_text()
        found = [line for line in text.splitlines() if _ESCAPES.search(line)]
        assert found == [], f"{name} escapes the generated types: {found}"
        assert "@ts-ignore" not in text and "@ts-expect-error" not in text and "eslint-disable" not in text


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not on PATH: the TypeScript SDK test needs Node 20 and npm "
                    "(Debian: apt-get install -y nodejs npm)")
    return found


def _run(args: list[str], cwd: Path, what: str, timeout: float = 300, **env: str) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(args)}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The npm project installed, both clients generated from the committed spec, the program built."""
    npm, node = _tool("npm"), _tool("node")
    work = tmp_path_factory.mktemp("ts-sdk")
    for name in PROJECT_FILES + PROGRAM_FILES:
        shutil.copy(PROJECT / name, work / name)
    installed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )
    if installed.returncode != 0:
        pytest.fail("npm ci could not install the pinned packages of tests/sdk/ts (is the npm registry "
                    f"reachable?):\n{installed.stderr[-4000:]}")
    bin_dir = work / "node_modules" / ".bin"
    _run([node, str(bin_dir / "openapi-ts")], work, "@hey-api/openapi-ts", TIDELOG_SPEC=str(SPEC))
    _run([node, str(bin_dir / "openapi-typescript"), str(SPEC), "--enum",
          "-o", "gen/openapi-typescript/schema.ts"], work, "openapi-typescript")
    return work


@pytest.mark.e2e
def test_generated_clients_type_check_strictly(built: Path) -> None:
    tsc = str(built / "node_modules" / ".bin" / "tsc")
    _run([_tool("node"), tsc, "--version"], built, "tsc --version")
    _run([_tool("node"), tsc, "--noEmit", "--strict", "-p", "tsconfig.json"], built, "tsc --noEmit --strict")


@pytest.mark.e2e
def test_typescript_program_runs_against_a_broker(built: Path, broker_process: BrokerProcess) -> None:
    node = _tool("node")
    _run([node, str(built / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"], built, "tsc")
    output = _run([node, "dist/program.js", broker_process.url], built, "the TypeScript program", timeout=120)
    seen = json.loads(output.strip().splitlines()[-1])
    assert seen["created"] == "ts-orders"
    assert seen["offsets"] == [0, 1]
    assert seen["fetched"] == [{"n": 1}, {"n": 2}] and seen["fetchedHeader"] == "t-1"
    assert seen["highWatermark"] == 2
    assert seen["polledKeys"] == ["k1", "k2"]
    assert seen["position"] == {"topic": "ts-orders", "partition": 0, "offset": 2}
    assert seen["committed"] == [{"partition": 0, "offset": 2, "lag": 0}]
    assert seen["leftStatus"] == 204
    assert seen["sse"] == [{"offset": 0, "key": "k1", "value": {"n": 1}},
                           {"offset": 1, "key": "k2", "value": {"n": 2}}]
    assert seen["heyUnknownTopic"] is True and seen["otUnknownTopic"] is True
    assert seen["errorCode"] == 40401
