"""Structured output across formats, through each SDK's own `parse` helper: OpenAI's
`response_format` json_schema reaches a Claude model as Anthropic's native
`output_config.format`, Anthropic's `output_config.format` reaches a GPT model as
`response_format` json_schema, streams included; what a translation can't carry is refused
with a 400 naming it."""

from __future__ import annotations

import json

import anthropic
import openai
import pydantic
import pytest
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

from tollhouse.server.runner import BackgroundServer

CLAUDE = "claude-haiku-4-5"  # served by the Anthropic-format simulator
GPT = "gpt-4o-mini"  # served by the OpenAI-format simulator
ASK = [{"role": "user", "content": "Extract: 2 packs of green tea at 5.50 each."}]


class Order(pydantic.BaseModel):
    product_name: str
    price: float
    quantity: int
    tags: list[str]


@pytest.fixture(scope="module")
def gateway() -> BackgroundServer:
    server = serve_gateway(IN_PROCESS_CONFIG)
    yield server  # type: ignore[misc]
    server.stop()


def gpt_client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def claude_client(server: BackgroundServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_openai_parse_gets_a_valid_object_from_either_family(
    gateway: BackgroundServer, model: str
) -> None:
    completion = gpt_client(gateway).chat.completions.parse(
        model=model,
        messages=ASK,
        response_format=Order,  # type: ignore[arg-type]
    )
    message = completion.choices[0].message

    assert isinstance(message.parsed, Order)
    assert Order.model_validate_json(message.content or "") == message.parsed


@pytest.mark.parametrize("model", [CLAUDE, GPT])
def test_openai_streamed_parse_gets_a_valid_object_from_either_family(
    gateway: BackgroundServer, model: str
) -> None:
    with gpt_client(gateway).chat.completions.stream(
        model=model,
        messages=ASK,
        response_format=Order,  # type: ignore[arg-type]
    ) as stream:
        deltas = sum(1 for event in stream if event.type == "content.delta")
        completion = stream.get_final_completion()

    assert deltas > 1  # relayed as it came, not in one piece
    assert isinstance(completion.choices[0].message.parsed, Order)


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_anthropic_parse_gets_a_valid_object_from_either_family(
    gateway: BackgroundServer, model: str
) -> None:
    message = claude_client(gateway).messages.parse(
        model=model,
        max_tokens=400,
        messages=ASK,
        output_format=Order,  # type: ignore[arg-type]
    )

    assert isinstance(message.parsed_output, Order)


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_anthropic_streamed_output_config_format_gets_a_valid_object(
    gateway: BackgroundServer, model: str
) -> None:
    schema = Order.model_json_schema()
    with claude_client(gateway).messages.stream(
        model=model,
        max_tokens=400,
        messages=ASK,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": schema}},
    ) as stream:
        text = "".join(stream.text_stream)

    assert Order.model_validate(json.loads(text))


def test_temperature_outside_claudes_range_is_refused_not_clamped(
    gateway: BackgroundServer,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gpt_client(gateway).chat.completions.create(model=CLAUDE, messages=ASK, temperature=5)

    assert caught.value.param == "temperature"  # type: ignore[attr-defined]
    assert "outside the range Anthropic models accept (0 to 1)" in caught.value.message


def test_a_feature_claude_cannot_carry_is_refused_naming_it(gateway: BackgroundServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gpt_client(gateway).chat.completions.create(model=CLAUDE, messages=ASK, logprobs=True)

    assert caught.value.param == "logprobs"  # type: ignore[attr-defined]


def test_top_k_to_a_gpt_model_is_refused_naming_it(gateway: BackgroundServer) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude_client(gateway).messages.create(
            model=GPT,
            max_tokens=5,
            messages=ASK,  # type: ignore[arg-type]
            extra_body={"top_k": 5},
        )

    assert "`top_k` has no counterpart on OpenAI models" in caught.value.message
