"""tidelog-client installs alone: no broker, no broker dependencies, and it works against a broker.

A fresh ``python -m venv`` gets ``pip install ./client`` from this checkout (a real wheel build, its
dependencies from the package index), then, from a directory outside the checkout so that nothing
of the repository is importable by accident, it must: have none of FastAPI, SQLAlchemy, uvicorn,
alembic, psycopg, and none of the broker's packages ``app``, ``storage``, ``migrations``; produce
and fetch against a real broker process (run from the project's own environment); run a client
command of ``tidelog``; and say that ``tidelog serve`` needs the broker distribution.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BROKER_ONLY = ("fastapi", "sqlalchemy", "uvicorn", "alembic", "psycopg", "starlette", "pydantic")
BROKER_PACKAGES = ("app", "storage", "migrations")


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client-alone")
    venv = work / "venv"
    # A copy of client/: the wheel build writes build/ and *.egg-info beside the sources it builds.
    source = shutil.copytree(
        ROOT / "client",
        work / "client",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so", "__pycache__"),
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=600, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(tmp_path_factory.mktemp("client-alone-broker") / "data").start()
    yield process
    if process.running:
        process.stop()


def _python(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=venv.parent,  # outside the checkout: only what was installed is importable
    )


def test_only_the_client_and_its_own_dependencies_are_installed(client_venv: Path) -> None:
    result = _python(
        client_venv,
        """
        import importlib.metadata, importlib.util, json, sys
        dists = sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions())
        found = {name: importlib.util.find_spec(name) is not None for name in sys.argv[1:]}
        print(json.dumps({"dists": dists, "found": found}))
        """,
        *BROKER_ONLY,
        *BROKER_PACKAGES,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "tidelog-client" in answer["dists"]
    assert "tidelog" not in answer["dists"]
    assert [name for name, found in answer["found"].items() if found] == []
    for name in BROKER_ONLY:
        assert not any(d == name or d.startswith(name + "-") for d in answer["dists"]), answer["dists"]


def test_the_client_alone_produces_and_fetches_against_a_broker(
    client_venv: Path, broker: BrokerProcess
) -> None:
    result = _python(
        client_venv,
        """
        import sys
        import tidelog, tidelog._codec as codec
        from tidelog import Client
        with Client(sys.argv[1]) as client:
            client.admin.create_topic("alone", partitions=1)
            with client.producer(acks="all") as producer:
                for i in range(50):
                    producer.send("alone", {"i": i}, key=f"k{i}")
            got = client.fetch("alone", 0, 0, max_records=100)
            assert [r.value for r in got.records] == [{"i": i} for i in range(50)], got
        batch = codec.encode_batch([codec.RecordIn(b"v", b"k")], now_ms=1)
        assert codec.decode_batch(batch)[0].value == b"v"
        print(codec.DECODER, len(got.records))
        """,
        broker.url,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["python", "50"]  # no compiler was involved: the Python decoder


def test_the_command_runs_client_commands_and_points_at_the_broker_for_serve(
    client_venv: Path, broker: BrokerProcess
) -> None:
    tidelog = str(client_venv / "bin" / "tidelog")
    listed = subprocess.run(
        [tidelog, "topics", "list", "--url", broker.url, "-o", "json"],
        capture_output=True, text=True, timeout=60, cwd=client_venv.parent,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "alone" in {t["name"] for t in json.loads(listed.stdout)}  # made by the test before
    serve = subprocess.run(
        [tidelog, "serve", "--port", "0"], capture_output=True, text=True, timeout=60, cwd=client_venv.parent
    )
    assert serve.returncode == 1
    assert "needs the broker distribution" in serve.stderr
