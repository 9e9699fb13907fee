"""``http-sink``: each record's value POSTed (or a batch of them, as a JSON array) to ``http.url``.

Answers are classified as the runtime needs them: 2xx delivered; 400, 413, 422 (and any other 4xx
not listed next) are data errors of that record, subject to ``errors.tolerance`` and the
dead-letter topic; 401, 403, 404, 407, 408, 429 and 5xx, and connection failures and timeouts, are
outages, retried within ``errors.retry.timeout`` honouring ``Retry-After``, then the task fails —
an expired token never empties a topic into the dead-letter queue. With ``batch.max.records`` > 1 a
refused batch raises a data error and the runtime bisects it to find the poison record.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    Connector,
    DataError,
    RetriableError,
    SinkRecord,
    SinkTask,
    SinkTaskContext,
)

__all__ = ["HttpSinkConnector", "HttpSinkTask", "classify_status"]

OUTAGE_STATUSES = frozenset({401, 403, 404, 407, 408, 429})


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def classify_status(response: httpx.Response) -> BaseException | None:
    """Gives ``None`` for a 2xx, else the error the runtime should see for this answer."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    detail = f"HTTP {status} from {response.request.url}: {response.text[:500]}"
    if status in OUTAGE_STATUSES or status >= 500:
        return RetriableError(detail, retry_after_s=_retry_after(response))
    return DataError(detail)


class HttpSinkTask(SinkTask):
    def __init__(self) -> None:
        self._http: httpx.Client | None = None
        self._url = ""
        self._method = "POST"
        self._batch = 1

    def start(self, config: Mapping[str, Any], context: SinkTaskContext) -> None:
        headers = {"Content-Type": "application/json"}
        for item in config.get("http.headers", []):
            name, _, value = str(item).partition(":")
            headers[name.strip()] = value.strip()
        if config.get("http.auth.token"):
            headers["Authorization"] = f"Bearer {config['http.auth.token']}"
        self._url = str(config["http.url"])
        self._method = str(config.get("http.method", "POST"))
        self._batch = int(config.get("batch.max.records", 1))
        timeout = int(config.get("http.timeout.ms", 30_000)) / 1000
        self._http = httpx.Client(headers=headers, timeout=timeout)

    def _send(self, body: Any) -> BaseException | None:
        assert self._http is not None
        try:
            response = self._http.request(self._method, self._url, json=body)
        except httpx.TransportError as error:  # refused, reset, timed out: an outage
            return RetriableError(f"{type(error).__name__}: {error}")
        return classify_status(response)

    def put(self, records: Sequence[SinkRecord]) -> Sequence[BaseException | None]:
        if self._batch <= 1:
            return [self._send(record.value) for record in records]
        outcomes: list[BaseException | None] = []
        for start in range(0, len(records), self._batch):
            chunk = records[start : start + self._batch]
            error = self._send([r.value for r in chunk])
            if isinstance(error, DataError) and len(chunk) > 1:
                raise error  # the runtime bisects the batch to find the record at fault
            outcomes += [error] * len(chunk)
        return outcomes

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


class HttpSinkConnector(Connector):
    type_name: ClassVar[str] = "http-sink"
    kind: ClassVar[Literal["source", "sink"]] = "sink"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey(
                    "http.url", ConfigType.STRING, "Where records are sent.", required=True, importance="HIGH"
                ),
                ConfigKey(
                    "http.method", ConfigType.STRING, "POST or PUT.", default="POST", choices=("POST", "PUT")
                ),
                ConfigKey("http.headers", ConfigType.LIST, "Extra headers, Name:Value,…", default=[]),
                ConfigKey(
                    "http.auth.token",
                    ConfigType.PASSWORD,
                    "Sent as Authorization: Bearer <token>.",
                    default="",
                ),
                ConfigKey(
                    "batch.max.records", ConfigType.INT, "Records per request (>1: a JSON array).", default=1
                ),
                ConfigKey("http.timeout.ms", ConfigType.INT, "Timeout of one request.", default=30_000),
            )
        )

    @classmethod
    def task_class(cls) -> type[SinkTask]:
        return HttpSinkTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [dict(self._config) for _ in range(max_tasks)]
