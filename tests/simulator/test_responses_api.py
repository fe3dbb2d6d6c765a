"""The simulated OpenAI's Responses API, as the official SDK meets it directly: the upstream
the gateway passes Responses calls through to."""

from __future__ import annotations

import openai
import pytest

from tollhouse.server.runner import BackgroundServer


@pytest.fixture
def responses(simulator_server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=simulator_server.url + "/v1", api_key="sim", max_retries=0)


def test_a_response_has_text_and_usage_by_the_documented_estimate(
    responses: openai.OpenAI,
) -> None:
    response = responses.responses.create(model="gpt-4o-mini", input="one two three four")
    assert response.id.startswith("resp_")
    assert response.output_text
    assert response.usage is not None
    # The input counts as one user message: 4 tokens of framing and 19 bytes of text.
    assert response.usage.input_tokens == 4 + 5
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_a_stream_is_what_the_sdks_stream_helper_accumulates(responses: openai.OpenAI) -> None:
    with responses.responses.stream(model="gpt-4o-mini", input="hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text != ""


def test_a_forced_function_call_fits_the_tool_schema(responses: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"term": {"type": "string"}},
            "required": ["term"],
        },
    }
    response = responses.responses.create(
        model="gpt-4o-mini",
        input="look it up",
        tools=[tool],
        tool_choice="required",  # type: ignore[list-item]
    )
    [call] = response.output
    assert call.type == "function_call"
    assert call.name == "lookup"
    assert "term" in call.arguments


def test_reasoning_adds_a_reasoning_item_and_its_tokens(responses: openai.OpenAI) -> None:
    response = responses.responses.create(
        model="gpt-4o-mini", input="think", reasoning={"effort": "medium"}
    )
    assert response.output[0].type == "reasoning"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 24
    assert response.usage.output_tokens > 24


def test_a_mid_stream_fault_ends_the_stream_with_an_error_event(responses: openai.OpenAI) -> None:
    stream = responses.responses.create(
        model="gpt-4o-mini",
        input="hello",
        stream=True,
        extra_headers={"x-simulator-fault": "mid-stream-error:3"},
    )
    events = list(stream)
    # The Responses API's error event, as OpenAI sends it: the SDK yields it, typed.
    assert events[-1].type == "error"
    assert events[-1].message == "The server had an error while processing your request."
    assert "response.completed" not in [e.type for e in events]
