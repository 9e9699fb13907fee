"""Real ``tidelog serve`` processes: the safe default on a public bind, and the credential commands."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import tidelog
from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

PEPPER = "p1:" + "e" * 40
_CLI = "import sys; from tidelog.cli import main; sys.argv[0] = 'tidelog'; main()"


def _tidelog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, env=full_env,
                          timeout=60, check=False)


def test_a_public_bind_turns_authentication_on_and_prints_a_key_once(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", settings={"host": "0.0.0.0"}).start()
    try:
        key_file = tmp_path / "data" / "superuser.key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert re.fullmatch(r"tlk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", key)
        assert broker.log_text().count(key) == 1  # printed once
        with broker.client() as client:
            assert client.get("/v1/topics").status_code == 401
            assert client.get("/healthz").status_code == 200
            me = client.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"}).json()
            assert me["super_user"] is True
        broker.stop()
        broker.start()
        assert broker.log_text().count(key) == 1  # not again on the next start
        with broker.client() as client:
            assert client.get("/v1/topics").status_code == 401
            assert client.get("/v1/topics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    finally:
        if broker.running:
            broker.stop()


def test_insecure_allow_public_keeps_it_open(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", settings={"host": "0.0.0.0", "insecure_allow_public": "true"})
    broker.start()
    try:
        with broker.client() as client:
            assert client.get("/v1/topics").status_code == 200
        assert not (tmp_path / "data" / "superuser.key").exists()
    finally:
        broker.stop()


def test_keys_and_users_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"TIDELOG_AUTH_PEPPER": PEPPER}
    broker = BrokerProcess(data, settings={"auth_enabled": "true", "password_time_cost": 1,
                                           "password_memory_cost_kib": 64}, env=env).start()
    try:
        made = _tidelog("keys", "create", "--super", "--data-dir", str(data), env=env)
        assert made.returncode == 0, made.stderr
        admin = made.stdout.strip()
        url = ["--url", broker.url]
        refused = _tidelog("topics", "list", *url)
        assert refused.returncode == 1 and "401" in refused.stderr + refused.stdout
        app = _tidelog("--api-key", admin, "keys", "create", "--principal", "User:app", *url)
        assert app.returncode == 0, app.stderr
        app_key = app.stdout.strip()
        listed = _tidelog("--api-key", admin, "keys", "list", "-o", "json", *url)
        assert "User:app" in listed.stdout and app_key not in listed.stdout
        key_id = app_key.split("_")[1]
        assert _tidelog("topics", "list", *url, env={"TIDELOG_API_KEY": app_key}).returncode == 0
        assert _tidelog("--api-key", admin, "keys", "revoke", key_id, *url).returncode == 0
        assert _tidelog("topics", "list", *url, env={"TIDELOG_API_KEY": app_key}).returncode == 1
        created = _tidelog("--api-key", admin, "users", "create", "erin", "--password", "long enough", *url)
        assert created.returncode == 0, created.stderr
        assert _tidelog("--user", "erin", "--password", "long enough", "topics", "list", *url).returncode == 0
        assert "erin" in _tidelog("--api-key", admin, "users", "list", *url).stdout
        with tidelog.Client(broker.url, basic=("erin", "long enough")) as client:
            assert client.admin.whoami()["principal"] == "User:erin"
        with tidelog.Client(broker.url, api_key=admin) as client:
            assert client.admin.whoami()["super_user"] is True
        with tidelog.Client(broker.url, bearer_token="not-a-key") as client, pytest.raises(
            tidelog.AuthenticationError
        ):
            client.admin.list_topics()
        assert _tidelog("--api-key", admin, "users", "alter", "erin", "--password", "even longer", *url
                        ).returncode == 0
        assert _tidelog("--user", "erin", "--password", "long enough", "topics", "list", *url).returncode == 1
        assert _tidelog("--api-key", admin, "users", "delete", "erin", *url).returncode == 0
        with httpx.Client(base_url=broker.url) as client:
            assert client.get("/v1/whoami", auth=("erin", "even longer")).status_code == 401
        assert "Authorization" not in broker.log_text() and admin not in broker.log_text()
    finally:
        broker.stop()
