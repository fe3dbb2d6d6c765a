"""Requests refused before a call exists (the body could not be read or parsed, was too
large, or the gateway shed load) are recorded as the client saw them: a ledger record with
the status and error type, cost 0, the key's id when the key was identified, and a count in
/metrics (model `other` when none could be read)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.server.raw_http import read_answer
from tests.server.test_slow_bodies import start_body
from tests.stages.test_account import gateway_with_ledger
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import GATEWAY_KEY

from tollhouse.cli import main as tollhouse

HI = [{"role": "user", "content": "hi"}]


def calls_without_a_model(url: str, *statuses: str) -> dict[str, float]:
    """tollhouse_calls_total of model `other` (no model could be read), by status."""
    return {
        status: metric(url, "tollhouse_calls_total", status=status, model="other")
        for status in statuses
    }


def test_bodies_refused_while_read_or_parsed_are_recorded_with_status_type_and_no_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = gateway_with_ledger(tmp_path, limits={"max_body_bytes": 4096})
    claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    raw = {"content-type": "application/json", "x-api-key": GATEWAY_KEY}
    try:
        with pytest.raises(anthropic.BadRequestError):
            claude.messages.create(model="claude-haiku-4-5", max_tokens=-1, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.APIStatusError) as too_large:
            gpt.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "x" * 10_000}],
            )
        assert too_large.value.status_code == 413
        bad_json = httpx.post(server.url + "/v1/messages", content=b"{not json", headers=raw)
        duplicate = httpx.post(
            server.url + "/v1/chat/completions",
            content=b'{"model": "gpt-4o-mini", "model": "x", "messages": []}',
            headers=raw,
        )
        assert (bad_json.status_code, duplicate.status_code) == (400, 400)
        claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI)
        calls = calls_without_a_model(server.url, "400", "413")
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert [(r.status, r.error_type) for r in records] == [
        (400, "invalid_request_error"),
        (413, "invalid_request_error"),
        (400, "invalid_request_error"),
        (400, "invalid_request_error"),
        (200, None),
    ]
    assert [r.endpoint for r in records[:4]] == [
        "/v1/messages",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/chat/completions",
    ]
    assert [r.cost_usd for r in records[:4]] == [Decimal(0)] * 4
    assert calls == {"400": 3.0, "413": 1.0}

    assert (
        tollhouse(["logs", "--sqlite", str(tmp_path / "ledger.db"), "--errors-only", "--json"]) == 0
    )
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["status"] for row in listed) == [400, 400, 400, 413]


def test_a_refused_body_is_recorded_on_the_key_that_sent_it(tmp_path: Path) -> None:
    key_id, secret = create_key(tmp_path / "keys.db")
    server = gateway_with_ledger(
        tmp_path, keys={"required": True, "sqlite_path": str(tmp_path / "keys.db")}
    )
    try:
        refused = httpx.post(
            server.url + "/v1/messages",
            content=b'{"model": "claude-haiku-4-5", "max_tokens": -1, "messages": []}',
            headers={"content-type": "application/json", "x-api-key": secret},
        )
        unknown = httpx.post(server.url + "/v1/messages", content=b"{}")
    finally:
        server.stop()
    assert (refused.status_code, unknown.status_code) == (400, 401)
    records = read_sqlite(tmp_path / "ledger.db")
    assert [(r.status, r.key_id) for r in records] == [(400, key_id), (401, None)]


def test_calls_shed_at_the_in_flight_limit_are_recorded_in_both_formats(tmp_path: Path) -> None:
    server = gateway_with_ledger(tmp_path, reliability={"max_in_flight": 1})
    claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    # One call holds the only slot: the simulator waits 3 s before its first token.
    slow = threading.Thread(
        target=lambda: claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-ttft-ms": "3000"},
        )
    )
    slow.start()
    try:
        held = 0.0
        for _ in range(200):
            held = metric(server.url, "tollhouse_in_flight_calls")
            if held:
                break
            threading.Event().wait(0.01)
        assert held == 1
        with pytest.raises(anthropic.APIStatusError) as shed_anthropic:
            claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(openai.APIStatusError) as shed_openai:
            gpt.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
        shed = {
            status: metric(server.url, "tollhouse_calls_total", status=status)
            for status in ("529", "503")
        }
    finally:
        slow.join()
        server.stop()
    assert (shed_anthropic.value.status_code, shed_openai.value.status_code) == (529, 503)
    assert shed == {"529": 1.0, "503": 1.0}
    records = {r.status: r for r in read_sqlite(tmp_path / "ledger.db")}
    assert records[529].model_requested == "claude-haiku-4-5"
    assert records[529].error_type == "overloaded_error"
    assert records[503].model_requested == "gpt-4o-mini"
    assert [records[s].cost_usd for s in (529, 503)] == [Decimal(0)] * 2
    assert records[200].cost_usd


def test_stalled_bodies_and_too_many_bodies_per_key_are_recorded_on_the_key(
    tmp_path: Path,
) -> None:
    key_id, secret = create_key(tmp_path / "keys.db")
    server = gateway_with_ledger(
        tmp_path,
        keys={"required": True, "sqlite_path": str(tmp_path / "keys.db")},
        limits={"max_body_reads_per_key": 1},
        server={"body_timeout": 1.0},
    )
    try:
        with start_body(server.url, "/v1/messages", secret, 1000) as stalled:
            threading.Event().wait(0.2)
            with start_body(server.url, "/v1/chat/completions", secret, 1000) as second:
                assert read_answer(second).status == 429
            assert read_answer(stalled).status == 408
        counted = calls_without_a_model(server.url, "408", "429")
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert [(r.status, r.error_type, r.key_id) for r in records] == [
        (429, "rate_limit_error", key_id),
        (408, "timeout_error", key_id),
    ]
    assert counted == {"408": 1.0, "429": 1.0}
