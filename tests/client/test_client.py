"""The connection layer: URL resolution, retries of retriable answers, what is and is not retried."""

from __future__ import annotations

import httpx
import pytest

import tidelog
from tests.broker_process import BrokerProcess
from tidelog import Client
from tidelog._client import DEFAULT_URL, resolve_url

pytestmark = pytest.mark.e2e


class RefusingTransport(httpx.HTTPTransport):
    """Answers the first ``refusals`` requests itself with a problem+json error; forwards the rest."""

    def __init__(self, refusals: int, status: int, code: int, retry_after: str | None = "0") -> None:
        super().__init__()
        self.refusals = refusals
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.seen <= self.refusals:
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return httpx.Response(
                self.status,
                headers=headers,
                json={
                    "type": "about:blank",
                    "title": "busy",
                    "status": self.status,
                    "detail": "try later",
                    "error_code": self.code,
                },
            )
        return super().handle_request(request)


def test_url_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDELOG_URL", raising=False)
    assert resolve_url(None) == DEFAULT_URL
    monkeypatch.setenv("TIDELOG_URL", "http://broker.example:9000/")
    assert resolve_url(None) == "http://broker.example:9000"
    assert resolve_url("127.0.0.1:8081") == "http://127.0.0.1:8081"
    with Client() as client:
        assert client.url == "http://broker.example:9000"


@pytest.mark.parametrize(("status", "code"), [(503, 50303), (429, 42901), (409, 40904)])
def test_retriable_answers_are_retried(broker: BrokerProcess, status: int, code: int) -> None:
    transport = RefusingTransport(2, status, code)
    with Client(broker.url, transport=transport, backoff_ms=1) as client:
        assert client.cluster()["broker_id"] == 0
    assert transport.seen == 3


def test_retries_run_out_and_other_errors_are_not_retried(broker: BrokerProcess) -> None:
    busy = RefusingTransport(10, 503, 50302)
    with (
        Client(broker.url, transport=busy, retries=2, backoff_ms=1) as client,
        pytest.raises(tidelog.NotReadyError),
    ):
        client.cluster()
    assert busy.seen == 3
    refused = RefusingTransport(10, 422, 42204)
    with (
        Client(broker.url, transport=refused, backoff_ms=1) as client,
        pytest.raises(tidelog.InvalidParameterError),
    ):
        client.cluster()
    assert refused.seen == 1


def test_configs_and_partitions_through_admin(broker: BrokerProcess, topic_name: str) -> None:
    with Client(broker.url) as client:
        created = client.admin.create_topic(topic_name, 2, configs={"cleanup.policy": "compact"})
        assert created.partition_count == 2 and created.configs["cleanup.policy"] == "compact"
        checked = client.admin.create_topic(topic_name + "-v", 4, validate_only=True)
        assert checked.partition_count == 4
        assert topic_name + "-v" not in {t.name for t in client.admin.list_topics()}
        client.admin.alter_configs(topic_name, {"retention.ms": 60_000})
        configs = client.admin.describe_configs(topic_name)
        assert configs["retention.ms"] == 60_000 and configs["cleanup.policy"] == "compact"
        client.admin.alter_configs(topic_name, {"retention.ms": None})
        assert client.admin.describe_configs(topic_name)["retention.ms"] != 60_000
        with pytest.raises(tidelog.InvalidConfigError):
            client.admin.alter_configs(topic_name, {"no.such.config": 1})
        grown = client.admin.create_partitions(topic_name, 5)
        assert grown.partition_count == 5
        with pytest.raises(tidelog.InvalidPartitionsError):
            client.admin.create_partitions(topic_name, 2)
        described = client.admin.describe_topic(topic_name)
        assert [p.partition for p in described.partitions] == [0, 1, 2, 3, 4]
        assert all(p.leader == 0 and p.high_watermark == 0 for p in described.partitions)
        client.admin.delete_topic(topic_name)
        with pytest.raises(tidelog.UnknownTopicError):
            client.admin.describe_topic(topic_name)
