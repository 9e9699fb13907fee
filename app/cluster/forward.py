"""Forwarding a topic-level produce's records to the leaders of their partitions.

``POST /v1/topics/{topic}/records`` picks each record's partition (explicit, murmur2 of the key, or
sticky) on the broker that received it; in a cluster those partitions may have several leaders, so
a single redirect cannot serve the request. The receiving broker appends the partitions it leads
and sends each other partition's records to its leader as a partition-level produce
(``POST /v1/topics/{topic}/partitions/{p}/records``, same ``acks``), all concurrently; the broker
merges the per-record answers in request order (``Broker.produce``).

The forwarded body carries what was parsed, not the original text: each record's key and value in
the formats it was produced in (so fetch renders them the same), its timestamp (the one given, or
the receiving broker's clock), and its headers as base64 (``header_format=binary``: exact bytes).
A request with an ``Idempotency-Key`` is forwarded with the key's producer id, epoch 0 and
sequence 0 (``producer_id``/``producer_epoch``/``sequence``): the leader appends it idempotently,
and a retry forwarded again, to this leader or the next, is answered with the original offsets.

A forward that fails gives each of that partition's records an error result; the other partitions
are unaffected (a 207 answer):

- the leader answered an error (e.g. 503 50301 NotEnoughReplicas, 404 a partition it has not loaded
  yet): its ``error_code`` and ``detail``;
- the leader moved meanwhile: its 307 is followed (at most ``_MAX_REDIRECTS`` times);
- the leader is unreachable (killed, partitioned; nothing was sent): 50304 NOT_LEADER, which is
  retriable — a new leader is elected after ``broker.session.timeout.ms``;
- the leader did not answer in time, or the connection broke after the records were sent: 50305
  NOT_ENOUGH_REPLICAS_AFTER_APPEND — the records may have been appended, as with any produce whose
  answer was lost; never a redirect (the leader's own 50305 passes through as it is).

The wait for an answer is bounded by the leader's own ``acks=all`` bound
(``replica.lag.time.max.ms`` + ``broker.session.timeout.ms``) plus a margin, so that a slow
replication ends in the leader's own error rather than in a guess here.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import httpx
import orjson

from app.broker.formats import Format, key_format_of, value_format_of
from app.broker.produce import RecordResult
from app.cluster.replica import Role
from app.config import Settings
from app.error_codes import ErrorCode
from storage import RecordIn

if TYPE_CHECKING:
    from app.cluster.manager import ClusterManager

__all__ = ["ProduceForwarder"]

logger = logging.getLogger("tidelog.cluster.forward")

_MAX_REDIRECTS = 3
_CONNECT_TIMEOUT_S = 2.0
_ANSWER_MARGIN_S = 5.0


class ProduceForwarder:
    """Sends records of partitions led elsewhere to their leaders; one HTTP client, shared."""

    def __init__(self, manager: ClusterManager, settings: Settings) -> None:
        self._manager = manager
        answer_s = (
            settings.replica_lag_time_max_ms + settings.broker_session_timeout_ms
        ) / 1000 + _ANSWER_MARGIN_S
        self.timeout_s = answer_s
        from app.security.authn.bootstrap import inter_broker_headers, inter_broker_verify

        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(answer_s, connect=_CONNECT_TIMEOUT_S),
            headers=inter_broker_headers(settings),
            verify=inter_broker_verify(settings),
            follow_redirects=True,
            max_redirects=_MAX_REDIRECTS,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def leader_of(self, topic: str, partition: int) -> tuple[int, str] | None:
        """The leader's (broker id, URL) when another broker leads the partition, else None.

        None also when the leader is unknown here: the local path then answers NOT_LEADER itself.
        """
        manager = self._manager
        replica = manager.replicas.get((topic, partition))
        if replica is None or replica.role is Role.LEADER:
            return None
        leader = replica.leader_id
        if leader is None or leader == manager.me:
            return None
        row = manager.brokers.get(leader)
        if row is None:
            return None
        return leader, row.url

    async def forward(
        self,
        leader: tuple[int, str],
        topic: str,
        partition: int,
        records: Sequence[RecordIn],
        indices: Sequence[int],
        acks: str,
        key_producer: int = -1,
    ) -> list[RecordResult]:
        """One result per record of ``indices`` (in that order): the leader's, or the forward's error.

        With ``key_producer`` (an Idempotency-Key's producer id) the records go as that idempotent
        producer at epoch 0 from sequence 0, so that the leader (this one or the next) recognises a
        retry of the request as a duplicate.
        """
        # Every record of one request has the same formats; group by them anyway, so that nothing
        # here depends on it.
        runs: dict[int, list[int]] = {}
        for i in indices:
            runs.setdefault(records[i].attributes, []).append(i)
        if key_producer >= 0:
            # Idempotent batches must arrive in sequence order: one after the other.
            answers = []
            sequence = 0
            for run in runs.values():
                producer = (key_producer, sequence)
                answers.append(await self._send(leader, topic, partition, records, run, acks, producer))
                sequence += len(run)
        else:
            answers = await asyncio.gather(
                *(self._send(leader, topic, partition, records, run, acks) for run in runs.values())
            )
        by_index: dict[int, RecordResult] = {}
        for run, results in zip(runs.values(), answers, strict=True):
            by_index.update(zip(run, results, strict=True))
        return [by_index[i] for i in indices]

    async def _send(
        self,
        leader: tuple[int, str],
        topic: str,
        partition: int,
        records: Sequence[RecordIn],
        run: list[int],
        acks: str,
        producer: tuple[int, int] | None = None,
    ) -> list[RecordResult]:
        leader_id, base = leader
        attributes = records[run[0]].attributes
        key_format, value_format = key_format_of(attributes), value_format_of(attributes)
        document: dict[str, object] = {
            "records": [_record_json(records[i], key_format, value_format) for i in run],
            "key_format": key_format.name.lower(),
            "value_format": value_format.name.lower(),
            "header_format": "binary",
        }
        if producer is not None:
            document["producer_id"], document["sequence"] = producer
            document["producer_epoch"] = 0
        body = orjson.dumps(document)
        url = f"{base.rstrip('/')}/v1/topics/{topic}/partitions/{partition}/records"
        where = f"{topic}-{partition}"

        def failed(code: int, message: str) -> list[RecordResult]:
            return [RecordResult(partition, error_code=code, message=message)] * len(run)

        try:
            answer = await self._client.post(
                url, params={"acks": acks}, content=body, headers={"content-type": "application/json"}
            )
        except httpx.ConnectTimeout:
            return failed(
                int(ErrorCode.NOT_LEADER),
                f"the leader of {where}, broker {leader_id} at {base}, did not accept a connection in "
                "time: nothing was sent; retry: a new leader is elected once its session lapses",
            )
        except httpx.TimeoutException as exc:
            return failed(
                int(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                f"the leader of {where}, broker {leader_id} at {base}, did not answer the forwarded "
                f"records in time ({type(exc).__name__}); they may have been appended",
            )
        except httpx.TooManyRedirects:
            return failed(
                int(ErrorCode.NOT_LEADER),
                f"the leadership of {where} is moving (more than {_MAX_REDIRECTS} redirects): retry",
            )
        except httpx.ConnectError as exc:
            logger.info("forward of %s to broker %d failed: %s", where, leader_id, exc)
            return failed(
                int(ErrorCode.NOT_LEADER),
                f"the leader of {where}, broker {leader_id} at {base}, is unreachable "
                f"({type(exc).__name__}); retry: a new leader is elected once its session lapses",
            )
        except httpx.HTTPError as exc:
            # Sent, then the connection broke: the leader may have appended the records.
            logger.info("forward of %s to broker %d failed after sending: %s", where, leader_id, exc)
            return failed(
                int(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                f"the connection to broker {leader_id}, the leader of {where}, broke after the records "
                f"were sent ({type(exc).__name__}); they may have been appended",
            )
        return _results_of(answer, partition, len(run), where, leader_id, failed)


def _record_json(record: RecordIn, key_format: Format, value_format: Format) -> dict[str, object]:
    out: dict[str, object] = {
        "key": _data_json(record.key, key_format),
        "value": _data_json(record.value, value_format),
        "timestamp": record.timestamp,
    }
    if record.headers:
        out["headers"] = [
            {"key": name, "value": None if value is None else base64.b64encode(value).decode("ascii")}
            for name, value in record.headers
        ]
    return out


def _data_json(data: bytes | None, fmt: Format) -> object:
    """A stored key or value as the JSON the produce endpoint takes in ``fmt`` (the same bytes back)."""
    if data is None:
        return None
    if fmt is Format.JSON:
        return orjson.Fragment(data)  # stored as compact JSON text: spliced in as it is
    if fmt is Format.STRING:
        return data.decode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _results_of(
    answer: httpx.Response,
    partition: int,
    count: int,
    where: str,
    leader_id: int,
    failed: Callable[[int, str], list[RecordResult]],
) -> list[RecordResult]:
    """The leader's answer as per-record results (its problem's code for each record on an error)."""
    try:
        document = answer.json()
    except ValueError:
        document = None
    if answer.status_code in (200, 207) and isinstance(document, dict):
        results = document.get("results")
        if isinstance(results, list) and len(results) == count:
            out: list[RecordResult] = []
            try:
                for item in results:
                    if item.get("error_code") is not None:
                        code, message = int(item["error_code"]), str(item.get("message"))
                        out.append(RecordResult(partition, error_code=code, message=message))
                    else:
                        out.append(RecordResult(partition, int(item["offset"]), int(item["timestamp"])))
            except (AttributeError, KeyError, TypeError, ValueError):
                out = []
            if out:
                return out
    if isinstance(document, dict) and isinstance(document.get("error_code"), int):
        detail = document.get("detail") or document.get("title") or ""
        message = f"broker {leader_id}, the leader of {where}, refused the records: {detail}"
        return failed(document["error_code"], message)
    return failed(
        int(ErrorCode.NOT_LEADER),
        f"broker {leader_id}, the leader of {where}, answered {answer.status_code} unexpectedly: retry",
    )
