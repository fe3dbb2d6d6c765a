"""`tollhouse serve` as a user runs it: a real process on its embedded defaults."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
from tests.serve_process import ServeProcess

from tollhouse.server.runner import free_port


def test_serve_without_keys_answers_from_the_simulator_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tollhouse", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        message = anthropic.Anthropic(base_url=url, api_key="k").messages.create(
            model="claude-haiku-4-5", max_tokens=30, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        completion = openai.OpenAI(base_url=url + "/v1", api_key="k").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=30
        )
        assert completion.choices[0].message.content
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "SIMULATOR MODE" in stderr
    assert "Traceback" not in stderr
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal as its exit.
    assert process.returncode in (0, -signal.SIGTERM)
    # The embedded ledger is a SQLite file in the working directory; shutdown drained it.
    with sqlite3.connect(tmp_path / "tollhouse.db") as db:
        models = sorted(row[0] for row in db.execute("SELECT model_requested FROM calls"))
    assert models == ["claude-haiku-4-5", "gpt-4o-mini"]


def test_check_config_reports_errors_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  p: {type: nope}\n")
    result = subprocess.run(
        [sys.executable, "-m", "tollhouse", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "$.providers.p.type" in result.stderr


def test_two_gateways_in_one_folder_both_serve_and_record_every_call(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, None, name="first") as first:
        with ServeProcess(tmp_path, None, name="second") as second:
            for gateway in (first.wait_ready(), second.wait_ready()):
                anthropic.Anthropic(base_url=gateway.url, api_key="k").messages.create(
                    model="claude-haiku-4-5",
                    max_tokens=30,
                    messages=[{"role": "user", "content": "hi"}],
                )
            second.stop()
        first.stop()
    for gateway in (first, second):
        assert "Traceback" not in gateway.log
    assert sorted(p.name for p in tmp_path.glob("*.spill")) == [
        "tollhouse-ledger.1.spill",
        "tollhouse-ledger.spill",
    ]
    with sqlite3.connect(tmp_path / "tollhouse.db") as db:
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (2,)


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, None, name="first") as first:
        first.wait_ready()
        second = ServeProcess(tmp_path, None, name="second", port=first.port)
        assert second.wait_exit() == 2
    assert second.log.splitlines()[-1:] == [
        f"tollhouse: cannot listen on 127.0.0.1:{first.port}: Address already in use; "
        "set server.port (--port) or server.host (--host) to a free address"
    ]
    assert "Traceback" not in second.log


def test_a_spill_file_that_cannot_be_opened_is_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    config = {"ledger": {"spill_path": str(tmp_path / "missing" / "ledger.spill")}}
    gateway = ServeProcess(tmp_path, config)
    assert gateway.wait_exit() == 2
    assert gateway.log.splitlines() == [
        f"tollhouse: config error: ledger.spill_path: cannot open "
        f"{tmp_path / 'missing' / 'ledger.spill'}: No such file or directory"
    ]
