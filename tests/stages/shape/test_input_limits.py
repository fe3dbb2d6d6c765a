"""Input limits: oversized requests are refused before any provider sees them, with a
message that states the limit; an oversized `max_tokens` is clamped or refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import orjson
import pytest
from tests.observability.test_call_ledger import read_sqlite
from tests.server.upstream_recorder import RecordingUpstream
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[str, RecordingUpstream]]:
    upstream = RecordingUpstream()
    with BackgroundServer(upstream) as up:
        gateway = serve_gateway(
            {
                "providers": {
                    "up": {"type": "anthropic", "base_url": up.url},
                    "sim-openai": {"type": "simulator", "simulator": {"format": "openai"}},
                },
                "limits": {
                    "input": {
                        "max_messages": 3,
                        "max_input_tokens": 400,
                        "max_tokens_cap": 100,
                        "max_request_bytes": 4000,
                    }
                },
                "models": {
                    "claude-haiku-4-5": {
                        "deployments": [{"provider": "up", "model": "claude-haiku-4-5"}]
                    },
                    "strict": {
                        "deployments": [{"provider": "up", "model": "claude-haiku-4-5"}],
                        "input_limits": {"max_tokens_cap": 50, "max_tokens_mode": "refuse"},
                    },
                    "gpt-4o-mini": {
                        "deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]
                    },
                },
            }
        )
        yield gateway.url, upstream
        gateway.stop()


@pytest.fixture
def claude(recorded: tuple[str, RecordingUpstream]) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=recorded[0], api_key=GATEWAY_KEY, max_retries=0)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_too_many_messages_is_refused_with_the_limit_before_the_upstream(
    claude: anthropic.Anthropic, recorded: tuple[str, RecordingUpstream]
) -> None:
    before = len(recorded[1].requests)
    messages = [
        user("a"),
        {"role": "assistant", "content": "b"},
        user("c"),
        {"role": "assistant", "content": "d"},
        user("e"),
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=messages)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert "5 messages; the limit is 3" in caught.value.message
    assert len(recorded[1].requests) == before


def test_too_many_input_tokens_is_refused_with_the_estimate_and_the_limit(
    claude: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[user("word " * 400)]
        )
    assert "prompt is too long" in caught.value.message
    assert "the limit is 400" in caught.value.message


def test_a_body_over_the_byte_limit_is_refused_with_413(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=[user("hi")],
            metadata={"user_id": "x" * 5000},
        )
    assert caught.value.status_code == 413
    assert "limit of 4000 bytes" in caught.value.message


def test_max_tokens_over_the_cap_is_clamped_and_the_rest_of_the_body_kept(
    claude: anthropic.Anthropic, recorded: tuple[str, RecordingUpstream]
) -> None:
    claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=5000,
        messages=[user("hi")],
        extra_body={"future_field": {"kept": True}},
    )
    sent = orjson.loads(recorded[1].requests[-1][2])
    assert sent["max_tokens"] == 100
    assert sent["future_field"] == {"kept": True}


def test_a_clamp_by_the_cap_is_stated_in_a_header_and_in_the_record(tmp_path: Path) -> None:
    server = serve_gateway(
        {
            **IN_PROCESS_CONFIG,
            "limits": {"input": {"max_tokens_cap": 100}},
            "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        }
    )
    try:
        claude = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
        lowered = claude.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=5000, messages=[user("hi")]
        )
        gpt = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        stated = gpt.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[user("hi")]
        )
        within = claude.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=50, messages=[user("hi")]
        )
    finally:
        server.stop()
    assert lowered.headers["x-tollhouse-max-tokens-clamped"] == "sent=100; asked=5000; by=cap"
    assert stated.headers["x-tollhouse-max-tokens-clamped"] == "sent=100; asked=unset; by=cap"
    assert "x-tollhouse-max-tokens-clamped" not in within.headers
    clamps = [r.metadata.get("max_tokens_clamp") for r in read_sqlite(tmp_path / "ledger.db")]
    assert sorted(clamps, key=str) == sorted(
        [
            {"by": "cap", "asked": 5000, "sent": 100},
            {"by": "cap", "asked": None, "sent": 100},
            None,
        ],
        key=str,
    )


def test_a_route_that_refuses_oversized_max_tokens_says_so(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="strict", max_tokens=60, messages=[user("hi")])
    assert "max_tokens is 60; the limit is 50" in caught.value.message


def test_openai_requests_without_max_tokens_get_the_cap(
    recorded: tuple[str, RecordingUpstream],
) -> None:
    client = openai.OpenAI(base_url=recorded[0] + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "write a long story " * 5}]
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 100
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": str(i)} for i in range(4)]
        )
    assert "the limit is 3" in caught.value.message
