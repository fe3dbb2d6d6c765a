"""Fallback chains across models and providers, with rules per failure class."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
from tests.reliability.conftest import simulator
from tests.server.upstream_recorder import RecordingUpstream
from tests.support import GATEWAY_KEY

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
Make = Callable[[dict[str, Any]], str]


def chain(primary: dict[str, Any], spare: dict[str, Any], **route: Any) -> dict[str, Any]:
    return {
        "providers": {"primary": primary, "spare": spare},
        "models": {
            "m": {
                "deployments": [
                    {"provider": "primary", "model": "primary-model"},
                    {"provider": "spare", "model": "spare-model"},
                ],
                **route,
            }
        },
    }


def test_overloaded_primary_falls_back_to_another_provider_and_format(make_gateway: Make) -> None:
    url = make_gateway(chain(simulator("anthropic", {"fault": "529"}), simulator("openai")))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.stop_reason == "end_turn"
    assert raw.headers["x-tollhouse-served-by"] == "spare/spare-model"
    assert raw.headers["x-tollhouse-fallback"] == "true"


def test_streams_fall_back_before_the_first_byte(make_gateway: Make) -> None:
    url = make_gateway(chain(simulator("openai", {"fault": "reset"}), simulator("anthropic")))
    client = openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="m", messages=HI, stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_failure_classes_not_listed_do_not_fall_back(make_gateway: Make) -> None:
    url = make_gateway(
        chain(
            simulator("anthropic", {"fault": "429:0"}),
            simulator("anthropic"),
            fallback_on=["overloaded", "server_error"],
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert caught.value.response.headers["x-tollhouse-attempts"] == "3"


TOO_LONG = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "prompt is too long: 250312 tokens > 200000 maximum",
    },
}


@pytest.fixture
def small_context_upstream() -> Iterator[tuple[str, RecordingUpstream]]:
    recorder = RecordingUpstream(status=400, doc=TOO_LONG)
    with BackgroundServer(recorder) as server:
        yield server.url, recorder


def test_context_window_overflow_goes_to_a_larger_context_model(
    make_gateway: Make, small_context_upstream: tuple[str, RecordingUpstream]
) -> None:
    small_url, recorder = small_context_upstream
    url = make_gateway(chain({"type": "anthropic", "base_url": small_url}, simulator("anthropic")))
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
    assert raw.parse().content[0].type == "text"
    assert raw.headers["x-tollhouse-served-by"] == "spare/spare-model"
    assert len(recorder.requests) == 1  # not retried on the small model
    assert orjson.loads(recorder.requests[0][2])["model"] == "primary-model"


def test_context_window_overflow_is_relayed_when_not_a_fallback_class(
    make_gateway: Make, small_context_upstream: tuple[str, RecordingUpstream]
) -> None:
    small_url, _ = small_context_upstream
    url = make_gateway(
        chain(
            {"type": "anthropic", "base_url": small_url},
            simulator("anthropic"),
            fallback_on=["overloaded"],
        )
    )
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        client.messages.create(model="m", max_tokens=300, messages=HI)  # type: ignore[arg-type]
