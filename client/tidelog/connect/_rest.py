"""The broker's connect routes as request descriptions (``tidelog._api.Call``), for the worker and CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tidelog._api import Call

__all__ = [
    "commit_task",
    "connector_call",
    "heartbeat",
    "leave",
    "report_status",
]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _identity(body: Any) -> Any:
    return body


def heartbeat(worker_id: str, running: Sequence[tuple[str, int]], session_timeout_ms: int) -> Call[Any]:
    return Call(
        "POST",
        f"/v1/connect/workers/{_seg(worker_id)}/heartbeat",
        _identity,
        json={
            "running": [{"connector": c, "task": t} for c, t in running],
            "session_timeout_ms": session_timeout_ms,
        },
        idempotent=True,
    )


def leave(worker_id: str) -> Call[Any]:
    return Call("DELETE", f"/v1/connect/workers/{_seg(worker_id)}", _identity, idempotent=True)


def report_status(
    connector: str, task: int, *, worker_id: str, generation: int, state: str, trace: str | None
) -> Call[Any]:
    return Call(
        "PUT",
        f"/v1/connect/tasks/{_seg(connector)}/{task}/status",
        _identity,
        json={"worker_id": worker_id, "generation": generation, "state": state, "trace": trace},
        idempotent=True,
    )


def commit_task(
    connector: str,
    task: int,
    *,
    worker_id: str,
    generation: int,
    offsets: Sequence[Mapping[str, Any]],
    topics: Sequence[str],
) -> Call[Any]:
    return Call(
        "POST",
        f"/v1/connect/tasks/{_seg(connector)}/{task}/offsets",
        _identity,
        json={
            "worker_id": worker_id,
            "generation": generation,
            "offsets": list(offsets),
            "topics": list(topics),
        },
        idempotent=True,
    )


def connector_call(
    method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
) -> Call[Any]:
    """A call of the public connect API (``/v1/connectors…``, ``/v1/connector-plugins…``)."""
    return Call(
        method,
        "/v1" + path,
        _identity,
        json=json,
        params=dict(params or {}),
        idempotent=method in ("GET", "PUT", "DELETE"),
    )
