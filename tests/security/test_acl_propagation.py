"""Three brokers on one PostgreSQL catalog: an ACL created or deleted through one broker is enforced
by the others within a second (each polls the catalog's security version every 200 ms)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.catalog import Catalog
from app.catalog.acls import create_acls
from app.security.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

ANONYMOUS = "User:ANONYMOUS"


def _wait_for(http: httpx.Client, url: str, status: int, timeout_s: float) -> float:
    """Seconds until ``GET url`` answers ``status``; fails after ``timeout_s``."""
    start = time.monotonic()
    answer = None
    while time.monotonic() - start < timeout_s:
        answer = http.get(url)
        if answer.status_code == status:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{url} still answers {answer and answer.status_code} after {timeout_s} s")


def test_an_acl_change_on_one_broker_is_enforced_by_the_others_within_a_second(
    tmp_path: Path, pg_url: str
) -> None:
    # Authentication is not part of this test: every request is anonymous, so the anonymous
    # principal gets the cluster (replication between the brokers needs CLUSTER_ACTION), not topics.
    catalog = Catalog(pg_url)
    try:
        catalog.migrate()
        with catalog.begin() as session:
            create_acls(session, bindings=[AclBinding(
                ANONYMOUS, "*", ResourceType.CLUSTER, PatternType.LITERAL, "kafka-cluster",
                Operation.ALL, Permission.ALLOW,
            )])
    finally:
        catalog.close()
    cluster = Cluster(tmp_path, pg_url, size=3, authorizer_enabled=True)
    try:
        cluster.start()
        cluster.wait_alive({0, 1, 2})
        http = cluster.http
        assert http.post(f"{cluster.url(0)}/v1/topics",
                         json={"name": "orders", "replication_factor": 3}).status_code == 201
        for via in (1, 2):
            assert http.get(f"{cluster.url(via)}/v1/topics/orders").status_code == 404
        binding = {"principal": ANONYMOUS, "resource_type": "TOPIC", "resource_name": "orders",
                   "operation": "READ"}
        assert http.post(f"{cluster.url(0)}/v1/acls", json={"acls": [binding]}).status_code == 201
        granted = time.monotonic()
        assert http.get(f"{cluster.url(0)}/v1/topics/orders").status_code == 200  # at once where made
        for via in (1, 2):
            _wait_for(http, f"{cluster.url(via)}/v1/topics/orders", 200, timeout_s=5.0)
        assert time.monotonic() - granted < 1.0
        removed = http.delete(f"{cluster.url(1)}/v1/acls",
                              params={"principal": ANONYMOUS, "resource_type": "TOPIC"})
        assert [a["resource_name"] for a in removed.json()["acls"]] == ["orders"]
        revoked = time.monotonic()
        for via in (0, 2):
            _wait_for(http, f"{cluster.url(via)}/v1/topics/orders", 404, timeout_s=5.0)
        assert time.monotonic() - revoked < 1.0
    finally:
        cluster.stop()
