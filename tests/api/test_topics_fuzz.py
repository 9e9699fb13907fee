"""Bad input never gets a 500: random bodies, names and configs against the topic endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.topics import TOPIC_CONFIGS

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
config_names = st.sampled_from(sorted(TOPIC_CONFIGS)) | st.text(max_size=30)
config_values = json_scalars | st.text(alphabet="0123456789-.e", max_size=25)
configs = st.dictionaries(config_names, config_values, max_size=4)
names = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=12) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#%"), max_size=260
)
create_bodies = st.fixed_dictionaries(
    {},
    optional={"name": names | json_values, "partitions": st.integers(-5, 2**40) | json_values,
              "replication_factor": st.integers(-2, 4) | json_values, "configs": configs | json_values},
) | json_values

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Few partitions: an accepted random count must not open hundreds of logs.
    return {"max_partitions_per_topic": 16}


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert isinstance(response.json()["error_code"], int)


@FUZZ
@given(body=create_bodies, validate_only=st.booleans())
def test_create_never_fails_with_500(client: Any, body: Any, validate_only: bool) -> None:
    response = client.post("/v1/topics", json=body, params={"validate_only": str(validate_only).lower()})
    _check(response)
    if response.status_code == 201:
        assert client.delete(f"/v1/topics/{response.json()['name']}").status_code == 204


@FUZZ
@given(changes=configs | json_values, partitions=st.integers(-3, 2**40) | json_values)
def test_changes_never_fail_with_500(client: Any, changes: Any, partitions: Any) -> None:
    if client.get("/v1/topics/fuzz").status_code == 404:
        assert client.post("/v1/topics", json={"name": "fuzz"}).status_code == 201
    _check(client.put("/v1/topics/fuzz/configs", json={"configs": changes}))
    _check(client.patch("/v1/topics/fuzz", json={"partitions": partitions}))
    assert client.get("/v1/topics/fuzz").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "t", "configs": {"retention.ms": Infinity}}',
        b'{"name": "t", "configs": {"min.cleanable.dirty.ratio": NaN}}',
        b'{"name": "t", "partitions": 1e400}',
        b'{"name": "t", "configs": {"segment.ms": -Infinity}}',
        b'{"name": "\\ud800"}',
        b"\xff\xfe{}",
        b'{"name": "t"}' + b" " * 10 + b"[]",
        b'{"name": "t", "name": "u"}',
    ],
)
def test_odd_json_never_fails_with_500(client: Any, raw: bytes) -> None:
    _check(client.post("/v1/topics", content=raw, headers={"content-type": "application/json"}))
