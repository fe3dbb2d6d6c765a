"""Variants of a route as a client meets them, through the official SDKs on the simulator:
the split's proportions and stickiness, the answer naming its variant, the ledger recording
it, the variant's changes to the request, and the per-key override for testing."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.server.upstream_recorder import RecordingUpstream
from tests.stages.test_keys_limits_budgets import claude, create_key, keyed_gateway
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
HAIKU = [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}]


def support_route(canary: float, **canary_settings: Any) -> dict[str, Any]:
    return {
        "deployments": HAIKU,
        "variants": {
            "control": {"weight": 100 - canary},
            "canary": {"weight": canary, **canary_settings},
        },
    }


def split_gateway(tmp_path: Path, canary: float, name: str = "ledger") -> BackgroundServer:
    return serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "models": {**IN_PROCESS_CONFIG["models"], "support": support_route(canary)},
            "ledger": {"sqlite_path": str(tmp_path / f"{name}.db"), "spill_path": None},
        }
    )


async def variants_seen(url: str, users: list[str], concurrency: int = 32) -> list[str]:
    """The variant each user's call was answered by (`x-tollhouse-variant`), in order."""
    client = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(user: str) -> str:
        async with gate:
            raw = await client.messages.with_raw_response.create(
                model="support", max_tokens=5, messages=HI, metadata={"user_id": user}
            )
            return raw.headers["x-tollhouse-variant"]

    try:
        return await asyncio.gather(*(one(user) for user in users))
    finally:
        await client.close()


@pytest.mark.timeout(900)
def test_a_ten_percent_canary_serves_ten_percent_of_10000_calls(tmp_path: Path) -> None:
    users = [f"customer-{i}" for i in range(10_000)]
    server = split_gateway(tmp_path, 10)
    try:
        seen = asyncio.run(variants_seen(server.url, users))
    finally:
        server.stop()
    shares = Counter(seen)
    assert set(shares) == {"control", "canary"}
    assert 900 <= shares["canary"] <= 1100, shares


@pytest.mark.timeout(600)
def test_1000_end_users_keep_their_variant_across_calls_and_a_weight_increase(
    tmp_path: Path,
) -> None:
    users = [f"person-{i}" for i in range(1000)]
    at_10 = split_gateway(tmp_path, 10, "at10")
    try:
        first = asyncio.run(variants_seen(at_10.url, users))
        again = asyncio.run(variants_seen(at_10.url, list(reversed(users))))[::-1]
    finally:
        at_10.stop()
    at_50 = split_gateway(tmp_path, 50, "at50")
    try:
        later = asyncio.run(variants_seen(at_50.url, users))
    finally:
        at_50.stop()
    assert first == again
    in_canary = [i for i, variant in enumerate(first) if variant == "canary"]
    assert 50 <= len(in_canary) <= 150
    assert all(later[i] == "canary" for i in in_canary)
    assert 400 <= later.count("canary") <= 600


def test_the_ledger_records_each_calls_route_and_variant(tmp_path: Path) -> None:
    server = split_gateway(tmp_path, 50)
    try:
        seen = asyncio.run(variants_seen(server.url, [f"u{i}" for i in range(40)], 4))
        claude_client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY)
        plain = claude_client.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
    finally:
        server.stop()
    assert "x-tollhouse-variant" not in plain.headers  # a route without variants has none
    records = read_sqlite(tmp_path / "ledger.db")
    split = [r for r in records if r.route == "support"]
    assert Counter(r.variant for r in split) == Counter(seen)
    assert [r.variant for r in records if r.route == "claude-haiku-4-5"] == [None]


# --- what a variant changes in the request ----------------------------------------------


@pytest.fixture(scope="module")
def recorded() -> Any:
    upstream = RecordingUpstream()
    tool = {"name": "lookup", "description": "Find an order", "input_schema": {"type": "object"}}
    with BackgroundServer(upstream) as up:
        routes = {
            name: {
                "deployments": [{"provider": "up", "model": "claude-haiku-4-5"}],
                "variants": {"control": {"weight": 0}, "v": {"weight": 100, **settings}},
            }
            for name, settings in {
                "appended": {
                    "system": {"mode": "append", "text": "Answer in one sentence."},
                    "parameters": {"temperature": 0.2, "max_tokens": 64},
                },
                "replaced": {"system": {"mode": "replace", "text": "You are terse."}},
                "prepended": {"system": {"mode": "prepend", "text": "Policy first."}},
                "tooled": {"tools": [tool], "cache_control": ["system", "tools"]},
                "other-model": {"model": "claude-sonnet-4-5"},
            }.items()
        }
        gateway = serve_gateway(
            {
                "providers": {"up": {"type": "anthropic", "base_url": up.url}},
                "models": routes,
                "lifecycle": {"retired": "allow"},
            }
        )
        yield gateway.url, upstream
        gateway.stop()


def sent(recorded: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(recorded[1].requests[-1][2])
    return doc


def test_a_variant_appends_to_the_system_prompt_and_sets_parameters(recorded: Any) -> None:
    client = anthropic.Anthropic(base_url=recorded[0], api_key=GATEWAY_KEY, max_retries=0)
    client.messages.create(
        model="appended",
        max_tokens=10,
        system="You help.",
        messages=HI,
        extra_body={"temperature": 1.0},
    )
    body = sent(recorded)
    assert body["system"] == "You help.\n\nAnswer in one sentence."
    assert (body["temperature"], body["max_tokens"]) == (0.2, 64)
    assert body["messages"] == HI


def test_a_variant_replaces_or_prepends_to_a_system_prompt_of_blocks(recorded: Any) -> None:
    client = anthropic.Anthropic(base_url=recorded[0], api_key=GATEWAY_KEY, max_retries=0)
    blocks: Any = [{"type": "text", "text": "Original."}]
    client.messages.create(model="replaced", max_tokens=10, system=blocks, messages=HI)
    assert sent(recorded)["system"] == "You are terse."
    client.messages.create(model="prepended", max_tokens=10, system=blocks, messages=HI)
    assert sent(recorded)["system"] == [
        {"type": "text", "text": "Policy first."},
        {"type": "text", "text": "Original."},
    ]


def test_a_variant_sets_the_tools_and_places_cache_breakpoints(recorded: Any) -> None:
    client = anthropic.Anthropic(base_url=recorded[0], api_key=GATEWAY_KEY, max_retries=0)
    client.messages.create(model="tooled", max_tokens=10, system="Long policy.", messages=HI)
    body = sent(recorded)
    assert body["system"] == [
        {"type": "text", "text": "Long policy.", "cache_control": {"type": "ephemeral"}}
    ]
    assert [tool["name"] for tool in body["tools"]] == ["lookup"]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}


def test_an_openai_client_gets_the_variants_system_prompt_translated(recorded: Any) -> None:
    client = openai.OpenAI(base_url=recorded[0] + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    client.chat.completions.create(
        model="appended",
        max_tokens=10,
        messages=[{"role": "system", "content": "You help."}, {"role": "user", "content": "hi"}],
    )
    body = sent(recorded)  # translated to the Anthropic upstream
    assert body["system"] == "You help.\n\nAnswer in one sentence."
    assert body["max_tokens"] == 64


def test_a_variant_can_be_served_by_another_model(recorded: Any) -> None:
    client = anthropic.Anthropic(base_url=recorded[0], api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="other-model", max_tokens=10, messages=HI)
    assert sent(recorded)["model"] == "claude-sonnet-4-5"
    assert raw.headers["x-tollhouse-variant"] == "v"


# --- choosing a variant per request -----------------------------------------------------


def override_gateway(tmp_path: Path) -> BackgroundServer:
    models = {**IN_PROCESS_CONFIG["models"], "support": support_route(0)}
    return keyed_gateway(tmp_path, models=models)


def test_a_key_with_the_override_scope_can_name_a_variant_at_zero_weight(tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("variant_override",))
    server = override_gateway(tmp_path)
    try:
        raw = claude(server.url, secret).messages.with_raw_response.create(
            model="support",
            max_tokens=5,
            messages=HI,
            extra_headers={"x-tollhouse-variant": "canary"},
        )
    finally:
        server.stop()
    assert raw.headers["x-tollhouse-variant"] == "canary"


def test_a_key_without_the_scope_is_refused_a_variant_it_names(tmp_path: Path) -> None:
    key_id, secret = create_key(tmp_path / "keys.db")
    server = override_gateway(tmp_path)
    try:
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            claude(server.url, secret).messages.create(
                model="support",
                max_tokens=5,
                messages=HI,
                extra_headers={"x-tollhouse-variant": "canary"},
            )
    finally:
        server.stop()
    assert f"API key {key_id} may not choose a variant" in caught.value.message
    assert "variant_override" in caught.value.message


def test_naming_an_unknown_variant_or_a_route_without_variants_is_a_bad_request(
    tmp_path: Path,
) -> None:
    _, secret = create_key(tmp_path / "keys.db", scopes=("variant_override",))
    server = override_gateway(tmp_path)
    try:
        client = claude(server.url, secret)
        with pytest.raises(anthropic.BadRequestError) as unknown:
            client.messages.create(
                model="support", max_tokens=5, messages=HI,
                extra_headers={"x-tollhouse-variant": "nope"},
            )  # fmt: skip
        with pytest.raises(anthropic.BadRequestError) as plain:
            client.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=HI,
                extra_headers={"x-tollhouse-variant": "canary"},
            )  # fmt: skip
    finally:
        server.stop()
    assert "has no variant 'nope'; its variants: control, canary" in unknown.value.message
    assert "route 'claude-haiku-4-5' has no variants" in plain.value.message
