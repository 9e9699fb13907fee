"""Produce and fetch throughput with authentication on vs off: ``python -m bench.auth_bench``.

Starts three ``tidelog serve`` processes on loopback, two with authentication off (the second a
control: how far two identical brokers differ in the same run) and one with it on (a pepper, a
password user, a static JWT key), then from one Python client (httpx, keep-alive) sends produce
requests of ``--batch`` 100-byte records to one partition (``acks=1``) and fetches them back, as
anonymous, with an API key, with HTTP Basic and with a JWT (RS256). The cases run interleaved,
round after round, the first case rotating, so that a change in the machine's load hits them alike;
each ratio is the median over the rounds of (case / off in the same round). With the credential
cache, argon2id and the RS256 verification are paid once per minute, not per request; the last
column is the broker's own time to authenticate one request with a cached credential, measured
in-process, which does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.http_bench import _free_port

PEPPER = "bench:" + "b" * 40
PASSWORD = "bench password"


class Broker:
    def __init__(self, data_dir: Path, extra: list[str]) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Broker:
        self.data_dir.mkdir(parents=True)
        command = [
            sys.executable,
            "-c",
            "from tidelog.cli import main; main()",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.extra,
        ]
        self.log = open(self.data_dir.parent / f"broker-{self.port}.log", "ab")
        env = {"PATH": "/usr/bin:/bin", "TIDELOG_AUTH_PEPPER": PEPPER}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("broker not ready after 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()


def _records(batch: int) -> bytes:
    return orjson.dumps({"records": [{"value": {"pad": "x" * 90}} for _ in range(batch)]})


def _produce_rate(
    client: httpx.Client, headers: dict[str, str], body: bytes, seconds: float, batch: int
) -> float:
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        answer = client.post(
            "/v1/topics/bench/partitions/0/records",
            params={"acks": "1"},
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"produce answered {answer.status_code}: {answer.text[:200]}")
        sent += batch
    return sent / (time.perf_counter() - start)


def _fetch_rate(client: httpx.Client, headers: dict[str, str], seconds: float, batch: int) -> float:
    read = 0
    offset = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        answer = client.get(
            "/v1/topics/bench/partitions/0/records",
            headers=headers,
            params={"offset": offset, "max_records": batch, "max_wait_ms": 0},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"fetch answered {answer.status_code}: {answer.text[:200]}")
        got = len(answer.json()["records"])
        read += got
        offset = 0 if got < batch else offset + got
    return read / (time.perf_counter() - start)


def cached_cost_us(headers: dict[str, str], data_dir: Path, pem: Path, rounds: int = 20_000) -> float:
    """Microseconds the broker spends authenticating one request whose credential is cached: the
    part of the overhead that does not depend on the machine's load."""
    import asyncio

    from app.catalog import Catalog
    from app.config import Settings
    from app.security.authn import Authenticator
    from app.security.authn.scheme import credential_of

    settings = Settings(
        data_dir=data_dir, auth_enabled=True, auth_pepper=PEPPER, oauthbearer_public_key_file=pem
    )
    catalog = Catalog(settings.effective_catalog_url)
    authenticator = Authenticator(settings, catalog)
    scope = {"headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}

    async def run() -> float:
        await authenticator.authenticate(credential_of(scope))
        start = time.perf_counter()
        for _ in range(rounds):
            await authenticator.authenticate(credential_of(scope))
        return (time.perf_counter() - start) / rounds * 1e6

    try:
        return asyncio.run(run())
    finally:
        catalog.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="Per case and round.")
    parser.add_argument("--batch", type=int, default=100, help="Records per request.")
    args = parser.parse_args(argv)

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory(prefix="tidelog-auth-bench-") as tmp:
        root = Path(tmp)
        pem = root / "issuer.pem"
        pem.write_bytes(
            private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        on_args = ["--auth-enabled", "true", "--oauthbearer-public-key-file", str(pem)]
        with (
            Broker(root / "off" / "data", []) as off,
            Broker(root / "control" / "data", []) as control,
            Broker(root / "on" / "data", on_args) as on,
        ):
            from app.config import Settings
            from app.security.authn.bootstrap import create_super_key

            key = create_super_key(settings=Settings(data_dir=on.data_dir, auth_pepper=PEPPER))
            token = jwt.encode(
                {"sub": "bench", "exp": int(time.time()) + 3600}, private_key, algorithm="RS256"
            )
            basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
            cases: dict[str, tuple[str, dict[str, str]]] = {
                "off": (off.url, {}),
                # A second broker without authentication: how far two identical brokers differ in this
                # run, i.e. the noise the other ratios carry.
                "off (control broker)": (control.url, {}),
                "API key": (on.url, {"Authorization": f"Bearer {key}"}),
                "Basic": (on.url, {"Authorization": basic}),
                "JWT (RS256)": (on.url, {"Authorization": f"Bearer {token}"}),
            }
            for url, headers in (
                (off.url, {}),
                (control.url, {}),
                (on.url, {"Authorization": f"Bearer {key}"}),
            ):
                httpx.post(f"{url}/v1/topics", json={"name": "bench"}, headers=headers).raise_for_status()
            httpx.post(
                f"{on.url}/v1/users",
                json={"name": "bench", "password": PASSWORD},
                headers={"Authorization": f"Bearer {key}"},
            ).raise_for_status()
            body = _records(args.batch)
            rates: dict[str, dict[str, list[float]]] = {"produce": {}, "fetch": {}}
            clients = {name: httpx.Client(base_url=url, timeout=30) for name, (url, _) in cases.items()}
            try:
                for name, (_, headers) in cases.items():  # warm: connections, caches, first pages
                    _produce_rate(clients[name], headers, body, 0.3, args.batch)
                names = list(cases)
                for round_ in range(args.rounds):
                    # The starting case rotates each round, so none always runs first (or last).
                    for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                        headers = cases[name][1]
                        client = clients[name]
                        produced = _produce_rate(client, headers, body, args.seconds, args.batch)
                        rates["produce"].setdefault(name, []).append(produced)
                        fetched = _fetch_rate(client, headers, args.seconds, args.batch)
                        rates["fetch"].setdefault(name, []).append(fetched)
            finally:
                for client in clients.values():
                    client.close()
            costs = {
                name: cached_cost_us(headers, on.data_dir, pem)
                for name, (_, headers) in cases.items()
                if headers
            }
    print(f"{args.rounds} rounds of {args.seconds} s per case, {args.batch} records of 100 bytes per request")
    print(
        "| case | produce records/s | produce vs off | fetch records/s | fetch vs off | cached auth/request |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in cases:
        cells = []
        for what in ("produce", "fetch"):
            mine, base = rates[what][name], rates[what]["off"]
            ratio = statistics.median(m / b for m, b in zip(mine, base, strict=True))
            cells += [f"{statistics.median(mine):,.0f}", f"{ratio:.2f}"]
        cost = f"{costs[name]:.0f} µs" if name in costs else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {cost} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
