"""`POST /v1/embeddings` through the openai SDK: relayed to an OpenAI-format upstream (the
simulator answers deterministic unit vectors), priced from the catalog, recorded in the
ledger, and under keys, rate limits and budgets like any call; refused with 400 for a model
only Anthropic-format upstreams serve."""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import create_key, gpt, keyed_gateway
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.config.model import Budget, Limits

MODELS: dict[str, Any] = {
    "text-embedding-3-small": {
        "deployments": [{"provider": "sim-openai", "model": "text-embedding-3-small"}]
    },
    "claude-haiku-4-5": IN_PROCESS_CONFIG["models"]["claude-haiku-4-5"],
}


def test_embeddings_are_relayed_deterministic_priced_and_recorded(tmp_path: Path) -> None:
    server = serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "models": MODELS,
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        }
    )
    try:
        client = gpt(server.url, "unused")
        first = client.embeddings.create(
            model="text-embedding-3-small", input=["the cat sat", "on the mat"]
        )
        again = client.embeddings.create(model="text-embedding-3-small", input="the cat sat")
        short = client.embeddings.create(
            model="text-embedding-3-small", input="the cat sat", dimensions=8
        )
        as_base64 = client.embeddings.create(
            model="text-embedding-3-small", input="the cat sat", encoding_format="base64"
        )
    finally:
        server.stop()
    cat, mat = (item.embedding for item in first.data)
    assert len(cat) == 1536
    assert math.isclose(sum(v * v for v in cat), 1.0, rel_tol=1e-6)  # float32 on the wire
    assert again.data[0].embedding == cat  # the same input, the same vector
    assert mat != cat
    assert len(short.data[0].embedding) == 8
    raw = base64.b64decode(str(as_base64.data[0].embedding))
    assert list(struct.unpack(f"<{len(cat)}f", raw)) == cat
    assert first.usage.prompt_tokens > 0
    records = read_sqlite(tmp_path / "ledger.db")
    assert [r.endpoint for r in records] == ["/v1/embeddings"] * 4
    record = records[0]
    assert (record.status, record.provider) == (200, "sim-openai")
    assert record.input_tokens == first.usage.prompt_tokens
    assert record.output_tokens == 0
    # $0.02 per million input tokens, from the catalog.
    assert record.cost_usd == Decimal(first.usage.prompt_tokens) * Decimal("0.02") / 10**6


def test_embeddings_need_a_key_and_count_against_its_rate_limit(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", limits=Limits(rpm=2))
    server = keyed_gateway(tmp_path, models=MODELS)
    try:
        with pytest.raises(openai.AuthenticationError):
            gpt(server.url, "th-not-a-key").embeddings.create(
                model="text-embedding-3-small", input="x"
            )
        client = gpt(server.url, secret)
        for _ in range(2):
            client.embeddings.create(model="text-embedding-3-small", input="x")
        with pytest.raises(openai.RateLimitError) as caught:
            client.embeddings.create(model="text-embedding-3-small", input="x")
    finally:
        server.stop()
    assert caught.value.response.headers["retry-after"]


def test_embeddings_are_refused_once_the_keys_budget_is_spent(tmp_path: Path) -> None:
    # About 1000 input tokens a call at $0.02 per million: $0.00002 a call.
    budget = Budget(daily_usd=Decimal("0.00005"), mode="reserve")
    _, secret = create_key(tmp_path / "keys.db", budget=budget)
    server = keyed_gateway(tmp_path, models=MODELS)
    answered = 0
    refusal: openai.RateLimitError | None = None
    try:
        client = gpt(server.url, secret)
        for _ in range(10):
            try:
                client.embeddings.create(model="text-embedding-3-small", input="a b " * 1000)
            except openai.RateLimitError as error:
                refusal = error
                break
            answered += 1
    finally:
        server.stop()
    spent = read_sqlite(tmp_path / "ledger.db")
    assert 1 <= answered < 10
    assert refusal is not None
    assert "budget" in refusal.message
    assert sum(r.cost_usd or 0 for r in spent) <= Decimal("0.00005")


def test_embeddings_for_a_model_only_anthropic_upstreams_serve_are_refused(
    tmp_path: Path,
) -> None:
    server = serve_gateway({**IN_PROCESS_CONFIG, "models": MODELS})
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            gpt(server.url, "unused").embeddings.create(model="claude-haiku-4-5", input="x")
    finally:
        server.stop()
    assert caught.value.param == "model"  # type: ignore[attr-defined]
    assert "no embeddings endpoint" in caught.value.message


@pytest.mark.parametrize("bad", [{"input": ""}, {"input": []}, {"input": [1.5]}, {"stream": True}])
def test_malformed_embeddings_requests_are_refused_with_400(bad: dict[str, Any]) -> None:
    server = serve_gateway({**IN_PROCESS_CONFIG, "models": MODELS})
    try:
        with pytest.raises(openai.BadRequestError):
            gpt(server.url, "unused").post(
                "/embeddings",
                body={"model": "text-embedding-3-small", "input": "x", **bad},
                cast_to=object,
            )
    finally:
        server.stop()
