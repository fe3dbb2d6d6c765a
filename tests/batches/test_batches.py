"""Message Batches through the official SDKs, on the simulator: Anthropic
`messages.batches` and OpenAI `files` + `batches`, relayed with the gateway's key, each
line recorded once at batch prices with its custom_id, budgets reserved then settled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import create_key
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.catalog.models import load_catalog
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi there"}]


def batch_config(tmp_path: Path, *, request_ms: float = 0.0, **sections: Any) -> dict[str, Any]:
    providers = {
        name: {**provider, "simulator": {**provider["simulator"], "batch_request_ms": request_ms}}
        for name, provider in IN_PROCESS_CONFIG["providers"].items()
    }
    return {
        **IN_PROCESS_CONFIG,
        "providers": providers,
        "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        "batches": {"poll_seconds": 0.05},
        **sections,
    }


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., BackgroundServer]]:
    servers: list[BackgroundServer] = []

    def start(**options: Any) -> BackgroundServer:
        server = serve_gateway(batch_config(tmp_path, **options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def claude(url: str, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0)


def gpt(url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=secret, max_retries=0)


def wait_for(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def ledger_lines(tmp_path: Path, count: int) -> list[CallRecord]:
    """The ledger's batch lines, once `count` of them are written."""

    def lines() -> list[CallRecord]:
        found = [r for r in read_sqlite(tmp_path / "ledger.db") if r.custom_id is not None]
        return found if len(found) >= count else []

    return sorted(wait_for(lines), key=lambda r: r.custom_id or "")


def batch_cost(model: str, record: CallRecord) -> Decimal:
    """The line's cost at the catalog's batch rates, worked out here from the card."""
    entry = load_catalog().get(model)
    assert entry is not None
    assert entry.pricing is not None
    card = entry.pricing
    assert card.batch_input is not None
    assert card.batch_output is not None
    return (
        record.input_tokens * card.batch_input + record.output_tokens * card.batch_output
    ) / Decimal(1_000_000)


def anthropic_requests(*custom_ids: str, max_tokens: int = 20) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": custom_id,
            "params": {"model": "claude-haiku-4-5", "max_tokens": max_tokens, "messages": HI},
        }
        for custom_id in custom_ids
    ]


def jsonl(*custom_ids: str, model: str = "gpt-4o-mini", max_tokens: int = 20) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "max_tokens": max_tokens, "messages": HI},
            }
        ).encode()
        + b"\n"
        for custom_id in custom_ids
    )


# --- Anthropic ----------------------------------------------------------------------


def test_anthropic_batch_runs_to_its_results_and_each_line_is_recorded_at_batch_prices(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = claude(gateway(request_ms=20).url, secret)
    created = client.messages.batches.create(requests=anthropic_requests("a", "b", "c"))
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3
    ended = wait_for(
        lambda: (
            (b := client.messages.batches.retrieve(created.id)).processing_status == "ended" and b
        )
    )
    assert ended.request_counts.succeeded == 3
    assert ended.results_url is not None
    assert ended.results_url.startswith("http://127.0.0.1")
    results = {r.custom_id: r for r in client.messages.batches.results(created.id)}
    assert set(results) == {"a", "b", "c"}
    assert all(r.result.type == "succeeded" for r in results.values())
    listed = client.messages.batches.list()
    assert [b.id for b in listed.data] == [created.id]

    records = ledger_lines(tmp_path, 3)
    assert [r.custom_id for r in records] == ["a", "b", "c"]
    for record in records:
        assert record.key_id == key_id
        assert record.endpoint == "/v1/messages/batches"
        assert record.metadata["batch_id"] == created.id
        assert record.model_requested == "claude-haiku-4-5"
        assert record.status == 200
        assert record.output_tokens > 0
        assert record.cost_usd is not None
        assert record.cost_usd > 0
        assert record.cost_usd == batch_cost("claude-haiku-4-5", record)
        message = results[record.custom_id or ""].result
        assert message.type == "succeeded"
        assert record.output_tokens == message.message.usage.output_tokens


def test_results_fetched_again_and_retrieved_again_record_each_line_once(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = claude(gateway(request_ms=0).url, secret)
    created = client.messages.batches.create(requests=anthropic_requests("x", "y"))
    wait_for(lambda: client.messages.batches.retrieve(created.id).processing_status == "ended")
    for _ in range(3):
        assert len(list(client.messages.batches.results(created.id))) == 2
        client.messages.batches.retrieve(created.id)
    ledger_lines(tmp_path, 2)
    time.sleep(0.4)  # the writer flushes every 0.2 s: a duplicate would be there by now
    lines = [r for r in read_sqlite(tmp_path / "ledger.db") if r.custom_id is not None]
    assert sorted(r.custom_id or "" for r in lines) == ["x", "y"]


def test_a_canceled_batch_ends_with_its_unrun_requests_canceled_at_no_cost(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = claude(gateway(request_ms=300).url, secret)
    created = client.messages.batches.create(requests=anthropic_requests("r1", "r2", "r3", "r4"))
    canceling = client.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling"
    ended = wait_for(
        lambda: (
            (b := client.messages.batches.retrieve(created.id)).processing_status == "ended" and b
        )
    )
    assert ended.request_counts.canceled >= 3
    kinds = {r.custom_id: r.result.type for r in client.messages.batches.results(created.id)}
    records = {r.custom_id: r for r in ledger_lines(tmp_path, 4)}
    for custom_id, kind in kinds.items():
        record = records[custom_id]
        if kind == "canceled":
            assert (record.status, record.error_type, record.cost_usd) == (499, "canceled", 0)
        else:
            assert record.status == 200
            assert record.cost_usd
            assert record.cost_usd > 0


@pytest.mark.parametrize("backend", ["in_process", "redis"])
def test_budget_holds_the_batch_worst_case_at_creation_then_settles_per_line(
    tmp_path: Path,
    gateway: Callable[..., BackgroundServer],
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    # Haiku 4.5 at batch rates: $0.50 / $2.50 per million. 4 requests of max_tokens 1,000
    # hold 4 x (input + 1,000 x $2.50/M) = just over $0.01; $0.012 allows one such batch.
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",), budget={"daily_usd": "0.012"})
    counters: dict[str, Any] = {"backend": backend}
    if backend == "redis":
        counters["redis_url"] = request.getfixturevalue("redis_url")
        counters["prefix"] = request.getfixturevalue("redis_prefix")
    client = claude(gateway(request_ms=100, counters=counters).url, secret)
    first = client.messages.batches.create(
        requests=anthropic_requests("a", "b", "c", "d", max_tokens=1000)
    )
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.batches.create(
            requests=anthropic_requests("e", "f", "g", "h", max_tokens=1000)
        )
    assert "batch prices" in refused.value.message
    assert "budget" in refused.value.message
    wait_for(lambda: client.messages.batches.retrieve(first.id).processing_status == "ended")
    records = ledger_lines(tmp_path, 4)
    spent = sum((r.cost_usd or Decimal(0) for r in records), Decimal(0))
    assert 0 < spent < Decimal("0.001")  # 20 answered tokens a line, not 1,000
    # Settled at what the lines cost, the budget has room for the same batch again.
    second = client.messages.batches.create(
        requests=anthropic_requests("e", "f", "g", "h", max_tokens=1000)
    )
    assert second.processing_status == "in_progress"


def test_a_batch_counts_as_one_request_on_the_keys_request_rate(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",), limits={"rpm": 1})
    client = claude(gateway().url, secret)
    client.messages.batches.create(requests=anthropic_requests("a", "b", "c"))
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.batches.create(requests=anthropic_requests("d"))
    assert "requests per minute" in refused.value.message
    assert refused.value.response.headers["retry-after"]


def test_past_max_open_batches_a_new_one_waits_for_one_to_end(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    server = gateway(request_ms=200, batches={"poll_seconds": 0.05, "max_open": 1})
    client = claude(server.url, secret)
    first = client.messages.batches.create(requests=anthropic_requests("a"))
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.batches.create(requests=anthropic_requests("b"))
    assert "batches.max_open" in refused.value.message
    wait_for(lambda: client.messages.batches.retrieve(first.id).processing_status == "ended")
    client.messages.batches.create(requests=anthropic_requests("b"))


def test_a_key_without_the_batches_scope_is_refused_in_both_formats(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db")
    server = gateway()
    with pytest.raises(anthropic.PermissionDeniedError) as anthropic_refusal:
        claude(server.url, secret).messages.batches.create(requests=anthropic_requests("a"))
    assert "batches" in anthropic_refusal.value.message
    with pytest.raises(openai.PermissionDeniedError) as openai_refusal:
        gpt(server.url, secret).files.create(file=("in.jsonl", jsonl("a")), purpose="batch")
    assert "`batches` scope" in openai_refusal.value.message


def test_another_keys_batch_is_not_found(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, owner = create_key(tmp_path / "keys.db", scopes=("batches",))
    _, other = create_key(tmp_path / "keys.db", scopes=("batches",))
    server = gateway()
    created = claude(server.url, owner).messages.batches.create(requests=anthropic_requests("a"))
    with pytest.raises(anthropic.NotFoundError):
        claude(server.url, other).messages.batches.retrieve(created.id)
    assert claude(server.url, other).messages.batches.list().data == []


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        (
            [
                {
                    "custom_id": "a",
                    "params": {"model": "no-such-model", "max_tokens": 5, "messages": HI},
                }
            ],
            "requests[0].params.model",
        ),
        (anthropic_requests("a", "a"), "used twice"),
        (anthropic_requests(*[f"r{i}" for i in range(6)]), "at most 5 requests"),
        (
            [{"custom_id": "a", "params": {"model": "claude-haiku-4-5", "messages": HI}}],
            "max_tokens",
        ),
        ([{"custom_id": "bad id!", "params": {}}], "requests[0].custom_id"),
    ],
)
def test_bad_anthropic_batches_are_refused_naming_the_request(
    tmp_path: Path,
    gateway: Callable[..., BackgroundServer],
    requests: list[dict[str, Any]],
    expected: str,
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    server = gateway(batches={"poll_seconds": 0.05, "max_requests": 5})
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(server.url, secret).messages.batches.create(requests=requests)
    assert expected in refused.value.message
    assert refused.value.body["error"]["type"] == "invalid_request_error"


# --- OpenAI -------------------------------------------------------------------------


def test_openai_batch_runs_from_file_to_output_and_each_line_is_recorded_at_batch_prices(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    key_id, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = gpt(gateway(request_ms=20).url, secret)
    uploaded = client.files.create(file=("in.jsonl", jsonl("q1", "q2")), purpose="batch")
    assert client.files.retrieve(uploaded.id).purpose == "batch"
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    seen = {batch.status}

    def completed() -> Any:
        current = client.batches.retrieve(batch.id)
        seen.add(current.status)
        return current.status == "completed" and current

    done = wait_for(completed)
    assert "in_progress" in seen or "finalizing" in seen or len(seen) == 2
    assert done.request_counts is not None
    assert done.request_counts.completed == 2
    assert done.output_file_id is not None
    output = [
        json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()
    ]
    assert sorted(line["custom_id"] for line in output) == ["q1", "q2"]
    assert client.batches.list().data[0].id == batch.id

    records = ledger_lines(tmp_path, 2)
    by_id = {line["custom_id"]: line for line in output}
    for record in records:
        assert record.key_id == key_id
        assert record.endpoint == "/v1/batches"
        assert record.metadata["batch_id"] == batch.id
        usage = by_id[record.custom_id]["response"]["body"]["usage"]
        assert record.output_tokens == usage["completion_tokens"] > 0
        assert record.cost_usd is not None
        assert record.cost_usd > 0
        assert record.cost_usd == batch_cost("gpt-4o-mini", record)
        assert record.upstream_request_id == by_id[record.custom_id]["response"]["request_id"]


def test_a_cancelled_openai_batch_ends_cancelled(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = gpt(gateway(request_ms=300).url, secret)
    uploaded = client.files.create(file=("in.jsonl", jsonl("a", "b", "c")), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    wait_for(lambda: client.batches.retrieve(batch.id).status == "cancelled")
    records = ledger_lines(tmp_path, 3)
    assert {(r.status, r.error_type, r.cost_usd) for r in records} == {(499, "canceled", 0)}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"custom_id": "a", "method": "POST"\n', "line 1: not valid JSON"),
        (jsonl("a", model="no-such-model"), "file line 1: model"),
        (jsonl("a", "b", "c", "d", "e", "f"), "at most 5 requests"),
        (jsonl("a") + jsonl("a"), "used twice"),
        (b"", "holds no request"),
    ],
)
def test_bad_openai_batch_files_are_refused_naming_the_line(
    tmp_path: Path, gateway: Callable[..., BackgroundServer], content: bytes, expected: str
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    server = gateway(batches={"poll_seconds": 0.05, "max_requests": 5})
    with pytest.raises(openai.BadRequestError) as refused:
        gpt(server.url, secret).files.create(file=("in.jsonl", content), purpose="batch")
    assert expected in refused.value.message


def test_an_openai_batch_of_another_endpoint_or_file_is_refused(
    tmp_path: Path, gateway: Callable[..., BackgroundServer]
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("batches",))
    client = gpt(gateway().url, secret)
    uploaded = client.files.create(file=("in.jsonl", jsonl("a")), purpose="batch")
    with pytest.raises(openai.BadRequestError) as wrong_endpoint:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
    assert "endpoint" in wrong_endpoint.value.message
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError) as wrong_purpose:
        client.files.create(file=("in.jsonl", jsonl("a")), purpose="assistants")
    assert "purpose" in wrong_purpose.value.message
