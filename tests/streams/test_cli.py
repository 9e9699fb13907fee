"""``tidelog streams run MODULE:APP`` against a real broker, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tidelog
from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from tidelog.cli import main; sys.argv[0] = 'tidelog'; main()"


def test_streams_run_processes_until_sigterm(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        (tmp_path / "upper.py").write_text(
            textwrap.dedent("""
            import tidelog.streams as ts
            app = ts.App("upper", commit_interval_ms=100)
            app.stream("words").map_values(str.upper).to("shout")
        """)
        )
        with tidelog.Client(broker.url) as client:
            client.admin.create_topic("words", 1)
            client.admin.create_topic("shout", 1)
            with client.producer() as producer:
                for word in ("a", "b", "c"):
                    producer.send("words", word)
            env = dict(os.environ, PYTHONPATH=str(ROOT), TIDELOG_URL=broker.url)
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CLI,
                    "streams",
                    "run",
                    "upper:app",
                    "--state-dir",
                    str(tmp_path / "state"),
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 30
                values: list[object] = []
                while time.monotonic() < deadline and len(values) < 3:
                    values = [r.value for r in client.reader("shout", 0).read_to_end(timeout_ms=100)]
                    time.sleep(0.2)
                assert values == ["A", "B", "C"]
            finally:
                proc.send_signal(signal.SIGTERM)
                out = proc.communicate(timeout=30)[0].decode()
            assert proc.returncode == 0, out
            assert "running upper" in out and "stopping upper" in out
            # The stop committed: the group's offset is past the three records.
            offsets = client.admin.list_group_offsets("upper").offsets
            assert [(o.topic, o.offset) for o in offsets if o.topic == "words"] == [("words", 3)]
    finally:
        broker.stop()


def test_streams_describe_names_internal_topics(tmp_path: Path) -> None:
    (tmp_path / "wc.py").write_text(
        textwrap.dedent("""
        import tidelog.streams as ts
        def make():
            app = ts.App("wc")
            words = app.stream("t").flat_map_values(str.split)
            words.group_by(lambda k, w: w).count(store="n").to_stream().to("o")
            return app
    """)
    )
    out = subprocess.run(
        [sys.executable, "-c", CLI, "streams", "describe", "wc:make"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wc-n-repartition" in out.stdout and "wc-n-changelog" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-c", CLI, "streams", "describe", "wc"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "MODULE:APP" in bad.stderr
