"""What ACLs cost: ``python -m bench.acl_bench``.

1. The decision alone (in process): ``StandardAuthorizer.authorize`` over a snapshot of
   ``--acls`` bindings (half LITERAL, a quarter PREFIXED, a quarter on groups), decisions per second.
2. Produce and fetch through a broker process with authorization off and on (``--authorizer-enabled``
   with the same number of bindings, the caller allowed by a PREFIXED binding among them): the
   throughput ratio on/off. The aim is at least 95% (the decision is a dictionary lookup and a scan
   of the few bindings that cover the resource).

Each HTTP case runs for ``--seconds``; figures from a loaded machine are only comparable with each
other, not with another machine's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from app.catalog import Catalog
from app.catalog.acls import create_acls
from app.security.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from app.security.authorizer import AclSnapshot, StandardAuthorizer
from bench.http_bench import _free_port, _records


def _bindings(count: int) -> list[AclBinding]:
    out = []
    for i in range(count):
        kind = i % 4
        if kind in (0, 1):
            out.append(AclBinding(f"User:u{i}", "*", ResourceType.TOPIC, PatternType.LITERAL, f"topic-{i}",
                                  Operation.READ, Permission.ALLOW))
        elif kind == 2:
            out.append(AclBinding(f"User:u{i}", "*", ResourceType.TOPIC, PatternType.PREFIXED, f"team{i}.",
                                  Operation.WRITE, Permission.ALLOW))
        else:
            out.append(AclBinding(f"User:u{i}", "*", ResourceType.GROUP, PatternType.LITERAL, f"group-{i}",
                                  Operation.READ, Permission.ALLOW))
    # The benchmark's own caller: anonymous, allowed on bench.* by one PREFIXED binding.
    out.append(AclBinding("User:ANONYMOUS", "*", ResourceType.TOPIC, PatternType.PREFIXED, "bench.",
                          Operation.ALL, Permission.ALLOW))
    out.append(AclBinding("User:ANONYMOUS", "*", ResourceType.CLUSTER, PatternType.LITERAL, "kafka-cluster",
                          Operation.CREATE, Permission.ALLOW))
    return out


def decision_rate(count: int, seconds: float, *, fresh: bool) -> float:
    """Decisions per second; ``fresh``: every one for another topic (no memoised answer)."""
    snapshot = AclSnapshot(_bindings(count))
    authorizer = StandardAuthorizer(lambda: snapshot)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i in range(1000):
            name = f"bench.t{done + i}" if fresh else "bench.t"
            authorizer.authorize("User:ANONYMOUS", "127.0.0.1", Operation.WRITE, ResourceType.TOPIC, name)
        done += 1000
    return done / (time.perf_counter() - started)


def _serve(data: Path, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from tidelog.cli import main; main()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data), "--log-level", "warning", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("broker not ready after 120 s")


def http_rates(count: int, seconds: float, authorizer: bool) -> tuple[float, float]:
    """Records/s of produce (1,000-record batches, acks=1) and fetch, each for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        extra: list[str] = []
        if authorizer:
            catalog = Catalog(f"sqlite:///{data / 'catalog.db'}")
            catalog.migrate()
            with catalog.begin() as session:
                create_acls(session, bindings=_bindings(count))
            catalog.close()
            extra = ["--authorizer-enabled", "true"]
        port = _free_port()
        process = _serve(data, port, extra)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                assert http.post("/v1/topics", json={"name": "bench.t"}).status_code == 201
                produced, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds:
                    body = orjson.dumps({"records": _records(produced)})
                    answer = http.post("/v1/topics/bench.t/partitions/0/records", content=body,
                                       params={"acks": "1"}, headers={"content-type": "application/json"})
                    assert answer.status_code == 200, answer.text
                    produced += 1000
                produce_rate = produced / (time.perf_counter() - started)
                fetched, offset, started = 0, 0, time.perf_counter()
                while time.perf_counter() - started < seconds:
                    start = offset % max(produced - 1000, 1)
                    answer = http.get("/v1/topics/bench.t/partitions/0/records",
                                      params={"offset": start, "max_records": 1000})
                    assert answer.status_code == 200, answer.text
                    body = orjson.loads(answer.content)
                    fetched += len(body["records"])
                    offset = body["next_offset"]
                fetch_rate = fetched / (time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(30)
    return produce_rate, fetch_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.acl_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--acls", type=int, default=1000, help="bindings in the catalog")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each timed case")
    parser.add_argument("--repeat", type=int, default=2, help="off/on pairs, run alternately")
    args = parser.parse_args(argv)
    for fresh in (True, False):
        rate = decision_rate(args.acls, 2.0, fresh=fresh)
        print(f"decisions/s over {args.acls} bindings ({'fresh' if fresh else 'memoised'}): {rate:,.0f}")
    # Alternating off and on, so that a machine busy with other work slows both alike.
    offs, ons = [], []
    for _ in range(args.repeat):
        offs.append(http_rates(args.acls, args.seconds, authorizer=False))
        ons.append(http_rates(args.acls, args.seconds, authorizer=True))
    for i, name in enumerate(("produce", "fetch")):
        a = statistics.median(r[i] for r in offs)
        b = statistics.median(r[i] for r in ons)
        print(f"{name}: off {a:,.0f} records/s, on {b:,.0f} records/s (medians of {args.repeat}), "
              f"ratio {b / a:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
