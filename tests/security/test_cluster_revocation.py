"""Three brokers on one PostgreSQL catalog with authentication on: a key revoked through one broker is
refused by the others within a second; replication runs as the inter-broker principal."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.security.authn.bootstrap import create_super_key
from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PEPPER = "p1:" + "c" * 40


def test_a_revoked_key_is_refused_on_every_broker_within_a_second(tmp_path: Path, pg_url: str) -> None:
    admin = create_super_key(settings=Settings(data_dir=tmp_path / "admin", catalog_url=pg_url,
                                               auth_pepper=PEPPER))
    cluster = Cluster(tmp_path, pg_url, size=3, auth_enabled=True, auth_pepper=PEPPER)
    cluster.http.headers["Authorization"] = f"Bearer {admin}"
    try:
        cluster.start()
        cluster.wait_alive({0, 1, 2})
        assert httpx.get(f"{cluster.url(1)}/v1/topics").status_code == 401  # anonymous
        # Replication with authentication on: followers fetch as the inter-broker principal.
        assert cluster.create_topic("replicated", replication_factor=3).status_code == 201
        state = cluster.wait_partition("replicated", 0, lambda p: len(p["isr"]) == 3)
        # At the leader itself: httpx drops Authorization on a redirect to another origin.
        assert cluster.produce(state["leader"], "replicated", 0, ["a", "b"]).status_code == 200
        for broker_id in (0, 1, 2):
            deadline = time.monotonic() + 20
            while cluster.read_all(broker_id, "replicated", 0) != ["a", "b"]:
                assert time.monotonic() < deadline, f"broker {broker_id} never replicated the records"
                time.sleep(0.1)

        created = cluster.http.post(f"{cluster.url(0)}/v1/keys", json={"principal": "User:app"})
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["key_id"]
        app_headers = {"Authorization": f"Bearer {key}"}
        for broker_id in (0, 1, 2):  # verified, so now cached on every broker
            answer = httpx.get(f"{cluster.url(broker_id)}/v1/whoami", headers=app_headers)
            assert answer.status_code == 200 and answer.json()["principal"] == "User:app"

        assert cluster.http.delete(f"{cluster.url(0)}/v1/keys/{key_id}").status_code == 200
        revoked_at = time.monotonic()
        refused: dict[int, float] = {}
        while len(refused) < 2 and time.monotonic() - revoked_at < 5:
            for broker_id in (1, 2):
                if broker_id not in refused:
                    answer = httpx.get(f"{cluster.url(broker_id)}/v1/whoami", headers=app_headers)
                    if answer.status_code == 401:
                        refused[broker_id] = time.monotonic() - revoked_at
            time.sleep(0.02)
        assert set(refused) == {1, 2}, f"still accepted after 5 s: {refused}"
        assert max(refused.values()) < 1.0, refused
        assert httpx.get(f"{cluster.url(0)}/v1/whoami", headers=app_headers).status_code == 401
    finally:
        cluster.stop()
