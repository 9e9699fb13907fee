"""``tidelog acls`` and ``tidelog quotas`` against a real broker (run as a super user: every request
of these tests is anonymous, and the broker names ``User:ANONYMOUS`` in ``super_users``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.broker_process import BrokerProcess
from tidelog.cli import main

pytestmark = pytest.mark.e2e


def run(broker: BrokerProcess, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--url", broker.url], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    return broker_factory("acl-broker", authorizer_enabled=True, super_users="User:ANONYMOUS")


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_acls_add_list_remove(broker: BrokerProcess) -> None:
    added = _json(run(broker, "acls", "add", "--principal", "User:alice", "--topic", "orders",
                      "--operation", "read", "-o", "json"))
    assert added == [{"principal": "User:alice", "host": "*", "resource_type": "TOPIC",
                      "pattern_type": "LITERAL", "resource_name": "orders", "operation": "READ",
                      "permission": "ALLOW"}]
    assert _json(run(broker, "acls", "add", "--principal", "User:alice", "--topic", "orders",
                     "--operation", "READ", "-o", "json")) == []  # already there
    _json(run(broker, "acls", "add", "--principal", "User:etl", "--topic", "or", "--prefixed",
              "--operation", "WRITE", "--deny", "-o", "json"))
    _json(run(broker, "acls", "add", "--principal", "User:ops", "--cluster", "--operation", "ALTER",
              "-o", "json"))
    matching = _json(run(broker, "acls", "list", "--topic", "orders", "--match", "-o", "json"))
    assert {(a["principal"], a["permission"]) for a in matching} == {("User:alice", "ALLOW"),
                                                                       ("User:etl", "DENY")}
    table = run(broker, "acls", "list")
    assert table.exit_code == 0 and "User:ops" in table.output and "kafka-cluster" in table.output
    removed = _json(run(broker, "acls", "remove", "--principal", "User:alice", "-o", "json"))
    assert [a["principal"] for a in removed] == ["User:alice"]
    left = _json(run(broker, "acls", "list", "-o", "json"))
    assert {a["principal"] for a in left} == {"User:etl", "User:ops"}
    refused = run(broker, "acls", "remove")
    assert refused.exit_code == 2 and "at least one" in refused.output
    bad = run(broker, "acls", "add", "--principal", "alice", "--topic", "t", "--operation", "READ")
    assert bad.exit_code == 1 and "42204" in bad.output


def test_quotas_set_list_remove(broker: BrokerProcess) -> None:
    entry = _json(run(broker, "quotas", "set", "<default>", "--producer-byte-rate", "1048576",
                      "--request-rate", "100", "-o", "json"))
    assert entry == {"principal": "<default>", "producer_byte_rate": 1048576, "consumer_byte_rate": None,
                     "request_rate": 100, "max_streams": None}
    _json(run(broker, "quotas", "set", "User:etl", "--max-streams", "3", "-o", "json"))
    cleared = _json(run(broker, "quotas", "set", "<default>", "--clear", "request-rate", "-o", "json"))
    assert cleared["request_rate"] is None and cleared["producer_byte_rate"] == 1048576
    listed = _json(run(broker, "quotas", "list", "-o", "json"))
    assert [e["principal"] for e in listed] == ["<default>", "User:etl"]
    assert run(broker, "quotas", "remove", "User:etl").exit_code == 0
    assert [e["principal"] for e in _json(run(broker, "quotas", "list", "-o", "json"))] == ["<default>"]
    missing = run(broker, "quotas", "remove", "User:nobody")
    assert missing.exit_code == 1 and "40499" in missing.output
