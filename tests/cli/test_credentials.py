"""The CLI's global credential options reach the broker as one Authorization header.

A recording HTTP server on 127.0.0.1 stands in for the broker (the broker's side of security is not
what is tested here): every command's requests must carry exactly the credential given.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from tidelog.cli import main


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"topics": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str | None]]]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()


def _run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    clean = {"TIDELOG_API_KEY": "", "TIDELOG_TOKEN": "", "TIDELOG_USER": "", "TIDELOG_PASSWORD": ""}
    result = CliRunner().invoke(main, args, env={**clean, **(env or {})}, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        (["--api-key", "tlk_k_s"], {}, "Bearer tlk_k_s"),
        ([], {"TIDELOG_API_KEY": "tlk_env"}, "Bearer tlk_env"),
        (["--token", "jwt.a.b"], {"TIDELOG_API_KEY": "tlk_env"}, "Bearer jwt.a.b"),
        (["--api-key", "tlk_flag"], {"TIDELOG_TOKEN": "env-token"}, "Bearer tlk_flag"),
        (["--user", "alice", "--password", "pw"], {}, "Basic " + base64.b64encode(b"alice:pw").decode()),
        ([], {"TIDELOG_USER": "bob", "TIDELOG_PASSWORD": "x"}, "Basic Ym9iOng="),
        ([], {}, None),
    ],
)
def test_each_credential_option_is_sent(
    recorder: tuple[str, list[str | None]], flags: list[str], env: dict[str, str], expected: str | None
) -> None:
    url, seen = recorder
    _run([*flags, "topics", "list", "--url", url, "-o", "json"], env)
    assert seen == [expected]


def test_a_user_without_a_password_is_asked_for_it(recorder: tuple[str, list[str | None]]) -> None:
    url, seen = recorder
    _run(["--user", "carol", "topics", "list", "--url", url, "-o", "json"], stdin="secret\n")
    assert seen == ["Basic " + base64.b64encode(b"carol:secret").decode()]


def test_two_kinds_of_credential_are_refused_before_anything_is_sent(
    recorder: tuple[str, list[str | None]],
) -> None:
    url, seen = recorder
    result = CliRunner().invoke(
        main, ["--api-key", "k", "--token", "t", "topics", "list", "--url", url], env={"TIDELOG_API_KEY": ""}
    )
    assert result.exit_code == 2 and "one kind of credential" in result.output
    assert seen == []
