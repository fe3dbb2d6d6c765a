"""Every call served leaves one record in the ledger (and, when asked, one JSON log line):
the figures the client saw, who asked, what answered; text only as configured, scrubbed."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.catalog.models import load_catalog
from tollhouse.ports.ledger.postgres import PostgresLedgerStore
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import BackgroundServer, free_port

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def read_sqlite(path: Path) -> list[CallRecord]:
    async def main() -> list[CallRecord]:
        store = SQLiteLedgerStore(path)
        try:
            return await store.query(limit=1000, newest_first=False)
        finally:
            await store.aclose()

    return asyncio.run(main())


def gateway_with(tmp_path: Path, **sections: Any) -> BackgroundServer:
    ledger = {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None}
    ledger.update(sections.pop("ledger", {}))
    return serve_gateway({**IN_PROCESS_CONFIG, "ledger": ledger, **sections})


def clients(url: str) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    return (
        anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0),
        openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0),
    )


def test_each_call_is_recorded_with_the_usage_and_exact_cost_the_client_saw(
    tmp_path: Path,
) -> None:
    server = gateway_with(tmp_path)
    claude, gpt = clients(server.url)
    try:
        message = claude.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "hi"}]
        )
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "yo"}]
        ) as stream:
            streamed = stream.get_final_message()
        completion = gpt.chat.completions.create(
            model="gpt-4o-mini", max_tokens=30, messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert len(records) == 3
    first, second, third = records
    assert first.request_id == message.headers["request-id"]
    parsed = message.parse()
    haiku = load_catalog().get("claude-haiku-4-5-20251001")
    assert haiku is not None
    for record, answer in ((first, parsed), (second, streamed)):
        usage = answer.usage
        assert record.model_requested == "claude-haiku-4-5"
        assert record.model_served == "claude-haiku-4-5-20251001"
        assert record.provider == "sim-anthropic"
        assert (record.input_tokens, record.output_tokens) == (
            usage.input_tokens,
            usage.output_tokens,
        )
        expected = (
            Decimal(usage.input_tokens) * haiku.pricing.input
            + Decimal(usage.output_tokens) * haiku.pricing.output
        ) / Decimal(1_000_000)
        assert record.cost_usd == expected
        assert record.status == 200
        assert record.stop_reason == answer.stop_reason
        assert record.error_type is None
        assert record.attempts == 1
        assert record.latency_ms > 0
    assert first.stream is False
    assert first.ttft_ms is None
    assert second.stream is True
    assert second.ttft_ms is not None
    assert 0 < second.ttft_ms <= second.latency_ms
    assert third.client_format == "openai"
    assert third.endpoint == "/v1/chat/completions"
    assert completion.usage is not None
    assert third.input_tokens == completion.usage.prompt_tokens
    assert third.output_tokens == completion.usage.completion_tokens


def test_text_is_not_kept_by_default_and_identifiers_with_pii_are_pseudonymised(
    tmp_path: Path,
) -> None:
    server = gateway_with(tmp_path)
    claude, _ = clients(server.url)
    try:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            system="You are terse.",
            metadata={"user_id": EMAIL},
            messages=[{"role": "user", "content": f"my card is {CARD}"}],
            extra_headers={"x-session-id": "sess-42"},
        )
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            system=[
                {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
            ],
            metadata={"user_id": "user-7"},
            messages=[{"role": "user", "content": "hello"}],
        )
    finally:
        server.stop()
    first, second = read_sqlite(tmp_path / "ledger.db")
    assert first.prompt_text is None
    assert first.answer_text is None
    assert first.end_user is not None
    assert first.end_user.startswith("pii:")
    assert second.end_user == "user-7"
    assert first.session_id == "sess-42"
    assert first.system_prompt_hash is not None
    assert first.system_prompt_hash == second.system_prompt_hash
    raw = (tmp_path / "ledger.db").read_bytes()
    for secret in (EMAIL, CARD, "my card is"):
        assert secret.encode() not in raw


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_redacted_text_is_kept_without_pii(tmp_path: Path, stream: bool) -> None:
    server = gateway_with(tmp_path, ledger={"text": "redacted"})
    claude, gpt = clients(server.url)
    prompt = f"mail {EMAIL} about card {CARD}"
    try:
        if stream:
            with claude.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=30,
                messages=[{"role": "user", "content": prompt}],
            ) as events:
                answer = events.get_final_text()
            chunks = gpt.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=30,
                stream=True,
                messages=[{"role": "user", "content": prompt}],
            )
            gpt_answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            message = claude.messages.create(
                model="claude-haiku-4-5",
                max_tokens=30,
                messages=[{"role": "user", "content": prompt}],
            )
            answer = "".join(b.text for b in message.content if b.type == "text")
            completion = gpt.chat.completions.create(
                model="gpt-4o-mini", max_tokens=30, messages=[{"role": "user", "content": prompt}]
            )
            gpt_answer = completion.choices[0].message.content or ""
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert [r.prompt_text for r in records] == ["user: mail [EMAIL] about card [CARD]"] * 2
    assert records[0].answer_text == answer
    assert records[1].answer_text == gpt_answer
    assert answer
    assert gpt_answer
    raw = (tmp_path / "ledger.db").read_bytes()
    assert EMAIL.encode() not in raw
    assert CARD.encode() not in raw


def test_full_text_keeps_the_prompt_as_sent(tmp_path: Path) -> None:
    server = gateway_with(tmp_path, ledger={"text": "full"})
    claude, _ = clients(server.url)
    try:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            system="sys",
            messages=[{"role": "user", "content": f"reach me at {EMAIL}"}],
        )
    finally:
        server.stop()
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.prompt_text == f"system: sys\nuser: reach me at {EMAIL}"


def test_failed_calls_are_recorded_with_status_and_error_type(tmp_path: Path) -> None:
    server = gateway_with(tmp_path)
    claude, gpt = clients(server.url)
    try:
        with pytest.raises(anthropic.NotFoundError):
            claude.messages.create(
                model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.InternalServerError):
            gpt.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=5,
                messages=[{"role": "user", "content": "x"}],
                extra_headers={"x-simulator-fault": "500"},
            )
    finally:
        server.stop()
    missing, failed = read_sqlite(tmp_path / "ledger.db")
    assert (missing.status, missing.error_type) == (404, "not_found_error")
    assert missing.model_served is None
    assert missing.attempts == 0
    # Both attempts failed, so the gateway answered that the model is unavailable.
    assert failed.status == 503
    assert failed.error_type == "server_error"
    assert failed.metadata["failures"] == ["sim-openai/gpt-4o-mini:server_error"] * 2
    assert failed.attempts == 2
    assert failed.cost_usd is None or failed.cost_usd == 0


def test_call_log_writes_one_scrubbed_json_line_per_call(tmp_path: Path) -> None:
    log_path = tmp_path / "calls.jsonl"
    server = gateway_with(
        tmp_path, ledger={"text": "redacted"}, logging={"call_log": str(log_path)}
    )
    claude, gpt = clients(server.url)
    try:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            metadata={"user_id": "u1"},
            messages=[{"role": "user", "content": f"I am {EMAIL}"}],
        )
        gpt.chat.completions.create(
            model="gpt-4o-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        server.stop()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    records = read_sqlite(tmp_path / "ledger.db")
    assert [line["request_id"] for line in lines] == [r.request_id for r in records]
    assert lines[0]["end_user"] == "u1"
    assert lines[0]["prompt_text"] == "user: I am [EMAIL]"
    assert Decimal(lines[0]["cost_usd"]) == records[0].cost_usd
    assert set(lines[1]) >= {"ts", "model_served", "input_tokens", "latency_ms", "status"}
    assert EMAIL not in log_path.read_text()
    assert oct(os.stat(log_path).st_mode & 0o777) == "0o600"


def test_ledger_state_is_on_metrics(tmp_path: Path) -> None:
    from tests.observability.test_call_accounting import metric

    server = gateway_with(tmp_path)
    claude, _ = clients(server.url)
    try:
        for _ in range(3):
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert (
            metric(server.url, "tollhouse_ledger_records_total", sink="ledger", fate="queued") == 3
        )
        assert metric(server.url, "tollhouse_ledger_store_up", sink="ledger") == 1
        assert httpx.get(server.url + "/metrics").text.count("tollhouse_ledger_queue_depth") >= 1
    finally:
        server.stop()


def test_postgres_ledger_records_every_call_of_a_concurrent_burst(
    postgres_conninfo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOLLHOUSE_TEST_LEDGER_DSN", postgres_conninfo)
    server = gateway_with(
        tmp_path,
        ledger={
            "backend": "postgres",
            "postgres": "env:TOLLHOUSE_TEST_LEDGER_DSN",
            "spill_path": str(tmp_path / "spill"),
        },
    )
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)

    async def burst() -> list[str]:
        async def one(i: int) -> str:
            raw = await client.messages.with_raw_response.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": f"n{i}"}],
            )
            return raw.headers["request-id"]

        return await asyncio.gather(*(one(i) for i in range(300)))

    try:
        served = asyncio.run(burst())
    finally:
        server.stop()

    async def stored() -> list[CallRecord]:
        store = PostgresLedgerStore(postgres_conninfo)
        try:
            return await store.query(limit=1000)
        finally:
            await store.aclose()

    assert sorted(r.request_id for r in asyncio.run(stored())) == sorted(served)


def test_an_unreachable_postgres_spills_records_and_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.observability.test_call_accounting import metric

    dead = f"host=127.0.0.1 port={free_port()} user=postgres dbname=test connect_timeout=1"
    monkeypatch.setenv("TOLLHOUSE_TEST_LEDGER_DSN", dead)
    spill = tmp_path / "ledger.spill"
    server = gateway_with(
        tmp_path,
        ledger={
            "backend": "postgres",
            "postgres": "env:TOLLHOUSE_TEST_LEDGER_DSN",
            "spill_path": str(spill),
            "flush_interval": 0.05,
        },
    )
    claude, _ = clients(server.url)
    try:
        for _ in range(5):
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert (
            metric(server.url, "tollhouse_ledger_records_total", sink="ledger", fate="queued") == 5
        )
    finally:
        server.stop()
    assert len(spill.read_bytes().splitlines()) == 5
