"""An OpenAI client routed to a Claude deployment and an Anthropic client routed to an OpenAI
deployment: requests, answers, streams, tool calls, usage and stop reasons translated."""

from __future__ import annotations

import json

import anthropic
import openai

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"sku": {"type": "string"}},
            "required": ["sku"],
        },
    },
}
TOOL_ANTHROPIC = {
    "name": "lookup",
    "input_schema": {
        "type": "object",
        "properties": {"sku": {"type": "string"}},
        "required": ["sku"],
    },
}


def test_openai_client_gets_a_completion_from_claude(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    assert completion.object == "chat.completion"
    assert completion.model == CLAUDE
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0


def test_claude_truncation_maps_to_length(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "Long"}], max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"


def test_openai_client_streams_from_claude_with_usage(openai_client: openai.OpenAI) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": "Stream"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_openai_client_tool_call_served_by_claude(openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model=CLAUDE,
        messages=[{"role": "user", "content": "Find sku"}],
        tools=[TOOL_OPENAI],
        tool_choice="required",
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls
    assert calls
    assert calls[0].function.name == "lookup"
    assert "sku" in json.loads(calls[0].function.arguments)


def test_anthropic_client_gets_a_message_from_gpt(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=GPT, max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


def test_anthropic_client_streams_from_gpt(anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model=GPT, max_tokens=100, messages=[{"role": "user", "content": "Stream"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_anthropic_client_tool_use_served_by_gpt(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=GPT,
        max_tokens=200,
        tools=[TOOL_ANTHROPIC],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Find sku"}],
    )
    assert message.stop_reason == "tool_use"
    call = next(b for b in message.content if b.type == "tool_use")
    assert call.name == "lookup"
    assert "sku" in call.input  # type: ignore[operator]


def test_count_tokens_on_an_openai_route_is_estimated(
    anthropic_client: anthropic.Anthropic,
) -> None:
    counted = anthropic_client.messages.count_tokens(
        model=GPT, messages=[{"role": "user", "content": "Hi there"}]
    )
    assert counted.input_tokens > 0
