"""The API the console needs (topic paging, DescribeLogDirs) and how /ui serves its files."""

from __future__ import annotations

from typing import Any

import pytest


def _create(client: Any, name: str, partitions: int = 1) -> None:
    assert client.post("/v1/topics", json={"name": name, "partitions": partitions}).status_code == 201


def test_topics_are_filtered_and_paged_with_a_total(client: Any) -> None:
    for name in ["a.one", "a.two", "a.three", "b.one"]:
        _create(client, name)
    answer = client.get("/v1/topics", params={"name_contains": "a.", "offset": 1, "limit": 1}).json()
    assert answer["total"] == 3
    assert [t["name"] for t in answer["topics"]] == ["a.three"]  # by name: one, three, two
    assert answer["topics"][0]["records"] is None  # only with stats=true
    everything = client.get("/v1/topics").json()
    assert everything["total"] == 4 and len(everything["topics"]) == 4


def test_stats_count_the_records_held(client: Any) -> None:
    _create(client, "counted", partitions=2)
    records = [{"value": i, "partition": i % 2} for i in range(7)]
    assert client.post("/v1/topics/counted/records", json={"records": records}).status_code == 200
    answer = client.get("/v1/topics", params={"stats": "true"}).json()
    assert answer["topics"][0]["records"] == 7
    deleted = client.post("/v1/topics/counted/partitions/0/delete-records", json={"offset": 2})
    assert deleted.status_code == 200, deleted.text
    assert client.get("/v1/topics", params={"stats": "true"}).json()["topics"][0]["records"] == 5


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"offset": -1}, {"limit": 10**30}, {"name_contains": "x" * 300}]
)
def test_bad_paging_is_a_422(client: Any, params: dict[str, Any]) -> None:
    answer = client.get("/v1/topics", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert isinstance(answer.json()["error_code"], int)


def test_log_dirs_give_disk_and_partition_sizes(client: Any, settings: Any) -> None:
    _create(client, "sized", partitions=2)
    assert (
        client.post("/v1/topics/sized/records", json={"records": [{"value": "x" * 100}]}).status_code == 200
    )
    answer = client.get("/v1/log-dirs").json()
    assert answer["broker_id"] == settings.broker_id
    assert answer["catalog"] == "sqlite"
    [directory] = answer["log_dirs"]
    assert directory["path"] == str(settings.data_dir.resolve())
    assert directory["total_bytes"] >= directory["usable_bytes"] > 0
    sizes = {(p["topic"], p["partition"]): p for p in directory["partitions"]}
    assert set(sizes) == {("sized", 0), ("sized", 1)}
    assert sum(p["log_end_offset"] for p in sizes.values()) == 1
    assert max(p["size_bytes"] for p in sizes.values()) > 100
    assert directory["size_bytes"] == sum(p["size_bytes"] for p in sizes.values())


def test_the_console_is_served_with_a_strict_policy(client: Any) -> None:
    redirect = client.get("/ui", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/config.json").json()["messages_enabled"] is True


@pytest.mark.parametrize(
    "path", ["/ui/..%2Fmain.py", "/ui/%2e%2e/%2e%2e/pyproject.toml", "/ui/nope.js", "/ui/js"]
)
def test_the_console_serves_only_its_own_files(client: Any, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error_code"] == 40499
    from app.ui.routes import STATIC_DIR

    detail = answer.json()["detail"]
    assert str(STATIC_DIR.parent) not in detail  # no server paths


@pytest.mark.parametrize("settings_overrides", [{"ui_enabled": False}])
def test_the_console_can_be_turned_off(client: Any) -> None:
    assert client.get("/ui/").status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"ui_messages_enabled": False}])
def test_message_viewing_can_be_turned_off(client: Any) -> None:
    config = client.get("/ui/config.json").json()
    assert config["messages_enabled"] is False and config["export_enabled"] is False
