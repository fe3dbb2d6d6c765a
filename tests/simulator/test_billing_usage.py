"""The simulator reports the usage fields a provider bills by when asked: for every answer
(its `usage` option) or per request (`x-simulator-usage`), whole and streamed, through the
official SDKs."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from tests.simulator.conftest import ServeSimulator, anthropic_client, error_of, openai_client

from tollhouse.server.runner import BackgroundServer

HI = [{"role": "user", "content": "hi"}]
BILLED = {"server_tool_use": {"web_search_requests": 2}, "inference_geo": "us", "speed": "fast"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_usage_option_reports_billing_fields_on_every_answer(
    serve_simulator: ServeSimulator, stream: bool
) -> None:
    client = anthropic_client(serve_simulator(usage=BILLED))
    if stream:
        with client.messages.stream(model="claude-opus-4-6", max_tokens=20, messages=HI) as s:
            usage = s.get_final_message().usage
    else:
        usage = client.messages.create(model="claude-opus-4-6", max_tokens=20, messages=HI).usage
    assert usage.server_tool_use is not None
    assert usage.server_tool_use.web_search_requests == 2
    assert (usage.inference_geo, usage.speed) == ("us", "fast")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_the_usage_header_sets_openai_tier_and_token_details(
    simulator_server: BackgroundServer, stream: bool
) -> None:
    fields = {"service_tier": "flex", "completion_tokens_details": {"reasoning_tokens": 7}}
    headers = {"x-simulator-usage": json.dumps(fields)}
    client = openai_client(simulator_server)
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="gpt-5.4",
                messages=HI,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers,
            )
        )
        tier, usage = chunks[-1].service_tier, chunks[-1].usage
    else:
        answer = client.chat.completions.create(
            model="gpt-5.4",
            messages=HI,  # type: ignore[arg-type]
            extra_headers=headers,
        )
        tier, usage = answer.service_tier, answer.usage
    assert tier == "flex"
    assert usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7


def test_a_usage_header_that_is_not_a_json_object_is_a_400(
    simulator_server: BackgroundServer,
) -> None:
    client = anthropic_client(simulator_server)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=20,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-usage": "[1, 2]"},
        )
    assert "x-simulator-usage" in error_of(refused.value.body)["message"]
    with pytest.raises(openai.BadRequestError):
        openai_client(simulator_server).chat.completions.create(
            model="gpt-5.4",
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-simulator-usage": "not json"},
        )
