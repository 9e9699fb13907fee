"""The audit trail: one record per mutation and per denial, in ``__audit`` and the audit file, with
no credential, query string or payload; ``__audit`` readable only by super users or an explicit ACL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import SUPER, acl

FIELDS = {"time", "request_id", "principal", "auth_method", "client", "action", "resource", "decision",
          "status"}


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"authorizer_enabled": True, "super_users": SUPER, "audit_enabled": True,
            "audit_file": tmp_path / "audit.jsonl"}


def _file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _topic_records(client: Any, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        answer = client.get("/v1/topics/__audit/partitions/0/records", params={"offset": 0}, headers=headers)
        assert answer.status_code == 200, answer.text
        records = [r["value"] for r in answer.json()["records"]]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_mutations_and_denials_are_recorded(
    secured: Any, as_user: Callable[[str | None], dict[str, str]], settings: Any
) -> None:
    admin, reader = as_user(SUPER), as_user("User:reader")
    secret = "tlk_0123456789abcdef_not-to-be-logged"
    created = secured.post("/v1/topics?validate_only=false", json={"name": "orders"},
                           headers={**admin, "Authorization": f"Bearer {secret}", "X-Request-ID": "req-1"})
    assert created.status_code == 201
    assert secured.post("/v1/acls", json={"acls": [acl("User:reader", "TOPIC", "orders", "READ")]},
                        headers=admin).status_code == 201
    payload = "card-4111111111111111"
    assert secured.post("/v1/topics/orders/records", json={"records": [{"value": payload}]},
                        headers=reader).status_code == 403
    assert secured.get("/v1/topics/orders", headers=reader).status_code == 200  # a read: not recorded
    assert secured.get("/v1/log-dirs", headers=reader).status_code == 403  # a denied read: recorded
    assert secured.post("/v1/groups/g/offsets", json={"offsets": [{"topic": "hidden", "partition": 0,
                                                                    "offset": 1}]},
                        headers=as_user("User:nobody")).status_code == 404

    records = _file_records(settings.audit_file)
    assert [(r["principal"], r["action"], r["resource"], r["decision"], r["status"]) for r in records] == [
        (SUPER, "POST /v1/topics", "CLUSTER:kafka-cluster", "allow", 201),
        (SUPER, "POST /v1/acls", "CLUSTER:kafka-cluster", "allow", 201),
        ("User:reader", "POST /v1/topics/{topic}/records", "TOPIC:orders", "deny", 403),
        ("User:reader", "GET /v1/log-dirs", "CLUSTER:kafka-cluster", "deny", 403),
        ("User:nobody", "POST /v1/groups/{group}/offsets", "GROUP:g", "deny", 404),
    ]
    assert all(set(r) == FIELDS for r in records)
    assert records[0]["request_id"] == "req-1" and records[0]["auth_method"] == "api_key"
    assert records[0]["client"] == "testclient"
    text = settings.audit_file.read_text()
    assert secret not in text and payload not in text and "validate_only" not in text

    in_topic = _topic_records(secured, admin, len(records))
    assert in_topic == records


def test_the_audit_topic_is_closed_to_everyone_else(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    for caller in (as_user("User:someone"), as_user(None)):
        assert secured.get("/v1/topics/__audit", headers=caller).status_code == 404
        listed = secured.get("/v1/topics", headers=caller).json()["topics"]
        assert "__audit" not in [t["name"] for t in listed]
    admin = as_user(SUPER)
    assert secured.post("/v1/acls", json={"acls": [acl("User:auditor", "TOPIC", "__audit", "READ")]},
                        headers=admin).status_code == 201
    auditor = as_user("User:auditor")
    assert secured.get("/v1/topics/__audit/partitions/0/records", params={"offset": 0},
                       headers=auditor).status_code == 200


def test_allow_everyone_never_opens_the_audit_topic(data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app
    from tests.security.conftest import AsPrincipal

    settings = Settings(data_dir=data_dir, authorizer_enabled=True, audit_enabled=True,
                        allow_everyone_if_no_acl_found=True)
    with TestClient(AsPrincipal(create_app(settings))) as client:
        assert client.get("/v1/topics").json()["topics"] == []  # open, but __audit is not listed
        assert client.post("/v1/topics", json={"name": "open"}).status_code == 201
        assert client.get("/v1/topics/__audit").status_code == 404
