"""Two brokers can never start on one data directory, even one with no topics yet (issue 11, item 9).

The first broker holds an ``flock`` on ``<data-dir>/.lock`` for its whole life; a second
``tidelog serve`` on the same directory exits at once with one clear line (no traceback), and the
first one keeps serving. Once the first has stopped (or crashed), the directory can be used again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.broker_process import _SERVE, BrokerProcess, free_port

pytestmark = pytest.mark.e2e


def _second_broker(data_dir: Path, catalog_url: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-c", _SERVE, "serve", "--host", "127.0.0.1", "--port", str(free_port()),
            "--data-dir", str(data_dir)]
    if catalog_url is not None:
        args += ["--catalog-url", catalog_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize("own_catalog", [False, True], ids=["shared-sqlite", "other-catalog"])
def test_a_second_broker_on_one_data_directory_is_refused(tmp_path: Path, own_catalog: bool) -> None:
    data_dir = tmp_path / "data"
    first = BrokerProcess(data_dir).start()
    try:
        catalog = f"sqlite:///{tmp_path / 'other.db'}" if own_catalog else None
        refused = _second_broker(data_dir, catalog)
        output = (refused.stdout + refused.stderr).strip()
        assert refused.returncode != 0, output
        assert "Traceback" not in output, output
        assert len(output.splitlines()) == 1, output
        assert "in use by another broker" in output and f"pid {first.pid}" in output, output
        with first.client(timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            assert http.post("/v1/topics", json={"name": "t", "partitions": 1}).status_code == 201
    finally:
        first.kill()  # a crashed holder leaves no stale lock
    second = BrokerProcess(data_dir).start()
    second.stop()


def test_an_app_in_this_process_takes_the_lock_too(settings: Any) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from storage.dirlock import DirectoryInUseError

    first, second = create_app(settings), create_app(settings)
    with TestClient(first), pytest.raises(DirectoryInUseError), TestClient(second):
        pass
    with TestClient(create_app(settings)) as client:  # released at the end of the first
        assert client.get("/readyz").status_code == 200
