"""``compaction.guard.group``: compaction of a changelog stops at what its group committed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api._records import assert_problem


def _produce(client: Any, topic: str, key: str, values: list[int]) -> None:
    for value in values:  # one request per record: one small batch each, so segments roll often
        body = {"records": [{"key": key, "value": value}]}
        response = client.post(f"/v1/topics/{topic}/partitions/0/records", json=body)
        assert response.status_code == 200, response.text


def _keys_and_values(client: Any, topic: str) -> list[tuple[int, Any]]:
    answer = client.get(f"/v1/topics/{topic}/partitions/0/records", params={"offset": 0, "max_records": 1000})
    return [(r["offset"], r["value"]) for r in answer.json()["records"]]


def _commit(client: Any, group: str, metadata: dict[str, Any] | None) -> None:
    offsets = [{"topic": "input", "partition": 0, "offset": 1}]
    if metadata is not None:
        offsets[0]["metadata"] = json.dumps(metadata)
    assert client.post(f"/v1/groups/{group}/offsets", json={"offsets": offsets}).status_code == 204


@pytest.mark.parametrize("settings_overrides", [{"log_segment_bytes": 100}])
def test_compaction_never_passes_the_committed_changelog_position(client: Any, app: Any) -> None:
    for name, configs in [
        ("input", {}),
        ("app-store-changelog", {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0,
                                 "compaction.guard.group": "app"}),
        ("plain-changelog", {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0}),
    ]:
        response = client.post("/v1/topics", json={"name": name, "partitions": 1, "configs": configs})
        assert response.status_code == 201, response.text
    client.post("/v1/topics/input/partitions/0/records", json={"records": [{"value": 1}]})
    for topic in ("app-store-changelog", "plain-changelog"):
        _produce(client, topic, "k", list(range(30)))

    # No commit of the group yet: nothing of the guarded changelog may be cleaned.
    app.state.broker.enforce_retention()
    assert [v for _, v in _keys_and_values(client, "app-store-changelog")] == list(range(30))
    assert len(_keys_and_values(client, "plain-changelog")) < 30  # the unguarded one was compacted

    # The group committed changelog position 12: values from 12 on stay, v11 is the value as of 12.
    _commit(client, "app", {"changelog": {"app-store-changelog": 12}})
    app.state.broker.enforce_retention()
    survivors = _keys_and_values(client, "app-store-changelog")
    assert all(offset >= 12 for offset, _ in survivors[1:]) and [v for _, v in survivors if _ >= 12] == list(
        range(12, 30)
    )
    below = [v for offset, v in survivors if offset < 12]
    assert below and below[-1] == 11 and len(below) < 12

    # Metadata that is not the streams shape gives no bound beyond "nothing committed".
    _commit(client, "app", {"other": 1})
    app.state.broker.enforce_retention()
    assert [v for o, v in _keys_and_values(client, "app-store-changelog") if o >= 12] == list(range(12, 30))


def test_the_guard_config_is_validated(client: Any) -> None:
    body = {"name": "bad-guard", "partitions": 1, "configs": {"compaction.guard.group": "no spaces"}}
    problem = assert_problem(client.post("/v1/topics", json=body), 422, 42201)
    assert problem["config"] == "compaction.guard.group"
    body["configs"] = {"compaction.guard.group": 5}
    assert_problem(client.post("/v1/topics", json=body), 422, 42201)
