"""Request translation between Chat Completions and Messages bodies."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scaling import LINEAR_GROWTH_LIMIT, growth

from tollhouse.errors import BadRequest
from tollhouse.wire.anthropic_openai import (
    anthropic_request_to_openai,
    openai_request_to_anthropic,
)

CLAUDE = "claude-sonnet-4-6"
GPT = "gpt-4o"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def to_anthropic(**body: Any) -> dict[str, Any]:
    body.setdefault("model", "my-alias")
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return openai_request_to_anthropic(body, CLAUDE)


def to_openai(**body: Any) -> dict[str, Any]:
    body.setdefault("model", "my-alias")
    body.setdefault("max_tokens", 512)
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return anthropic_request_to_openai(body, GPT)


def weather_call(call_id: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


# ============================================================ OpenAI → Anthropic


def test_openai_request_becomes_an_anthropic_request_for_the_upstream_model() -> None:
    assert to_anthropic() == {
        "model": CLAUDE,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


def test_system_and_developer_messages_join_into_system_in_order() -> None:
    body = to_anthropic(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        ]
    )

    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_data_url_image_becomes_a_base64_image_source() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = to_anthropic(messages=[{"role": "user", "content": [part]}])

    assert body["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        }
    ]


def test_http_image_url_becomes_a_url_image_source() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    body = to_anthropic(
        messages=[{"role": "user", "content": [{"type": "text", "text": "?"}, part]}]
    )

    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


def test_image_url_of_another_scheme_is_refused_with_its_param() -> None:
    part = {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(messages=[{"role": "user", "content": [part]}])

    assert excinfo.value.param == "messages[0].content[0].image_url.url"


def test_inline_pdf_file_becomes_a_document_block() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
    }
    body = to_anthropic(messages=[{"role": "user", "content": [part]}])

    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        }
    ]


def test_audio_content_is_refused_with_its_param() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(messages=[{"role": "user", "content": [part]}])

    assert excinfo.value.param == "messages[0].content[0].type"


def test_assistant_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    assistant = {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [weather_call("call_1", '{"city": "Paris"}')],
    }
    body = to_anthropic(messages=[{"role": "user", "content": "Weather?"}, assistant])

    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }


def test_tool_call_with_invalid_json_arguments_is_refused() -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [weather_call("c", '{"city":')],
    }
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(messages=[{"role": "user", "content": "Weather?"}, assistant])

    assert excinfo.value.param == "messages[1].tool_calls[0].function.arguments"


def test_consecutive_tool_messages_merge_into_one_user_turn_before_the_next_user_text() -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [weather_call("call_1", '{"city": "Paris"}'), weather_call("call_2", "{}")],
    }
    body = to_anthropic(
        messages=[
            {"role": "user", "content": "Weather?"},
            assistant,
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "?"}]},
            {"role": "user", "content": "Thanks"},
        ]
    )

    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"},
        {
            "type": "tool_result",
            "tool_use_id": "call_2",
            "content": [{"type": "text", "text": "?"}],
        },
        {"type": "text", "text": "Thanks"},
    ]


def test_consecutive_user_messages_merge_into_one_turn() -> None:
    body = to_anthropic(
        messages=[{"role": "user", "content": "One"}, {"role": "user", "content": "Two"}]
    )

    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}],
        }
    ]


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert to_anthropic(max_completion_tokens=300, max_tokens=100)["max_tokens"] == 300
    assert to_anthropic(max_tokens=100)["max_tokens"] == 100


@pytest.mark.parametrize(
    ("name", "value"), [("temperature", 1.7), ("temperature", 5), ("top_p", 1.5)]
)
def test_sampling_outside_the_anthropic_range_is_refused_not_clamped(
    name: str, value: float
) -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(**{name: value})

    assert excinfo.value.param == name
    assert "outside the range Anthropic models accept (0 to 1)" in excinfo.value.message


def test_sampling_within_the_anthropic_range_is_kept() -> None:
    body = to_anthropic(temperature=0.3, top_p=0.9)

    assert (body["temperature"], body["top_p"]) == (0.3, 0.9)


@pytest.mark.parametrize(("stop", "sequences"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop: Any, sequences: list[str]) -> None:
    assert to_anthropic(stop=stop)["stop_sequences"] == sequences


def test_function_tools_become_anthropic_tools_with_a_default_schema() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "ping", "strict": True}},
    ]
    body = to_anthropic(tools=tools)

    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "ping"}}, {"type": "tool", "name": "ping"}),
    ],
)
def test_tool_choice_maps_to_the_anthropic_tool_choice(
    choice: Any, expected: dict[str, Any]
) -> None:
    tools = [{"type": "function", "function": {"name": "ping"}}]
    assert to_anthropic(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    tools = [{"type": "function", "function": {"name": "ping"}}]
    body = to_anthropic(tools=tools, tool_choice="required", parallel_tool_calls=False)

    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools_is_dropped() -> None:
    assert "tool_choice" not in to_anthropic(tool_choice="auto", parallel_tool_calls=False)


def test_user_becomes_metadata_user_id() -> None:
    assert to_anthropic(user="user-42")["metadata"] == {"user_id": "user-42"}


def test_stream_is_kept_and_stream_options_dropped() -> None:
    body = to_anthropic(stream=True, stream_options={"include_usage": True})

    assert body["stream"] is True
    assert "stream_options" not in body


def test_more_than_one_choice_is_refused_with_param_n() -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(n=2)

    assert excinfo.value.param == "n"
    assert excinfo.value.status == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("presence_penalty", 0.5),
        ("frequency_penalty", -0.5),
        ("logit_bias", {"50256": -100}),
        ("seed", 7),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("audio", {"voice": "alloy", "format": "mp3"}),
        ("modalities", ["text", "audio"]),
        ("prediction", {"type": "content", "content": "x"}),
        ("web_search_options", {}),
        ("verbosity", "low"),
    ],
)
def test_a_feature_claude_cannot_carry_is_refused_naming_it(name: str, value: Any) -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(**{name: value})

    assert excinfo.value.param == name
    assert f"`{name}` has no counterpart on Anthropic models" in excinfo.value.message


def test_neutral_values_and_openai_bookkeeping_are_left_out() -> None:
    body = to_anthropic(
        presence_penalty=0,
        frequency_penalty=0.0,
        logit_bias={},
        logprobs=False,
        modalities=["text"],
        store=True,
        metadata={"tag": "x"},
        service_tier="auto",
        n=1,
    )

    assert set(body) == {"model", "max_tokens", "messages"}


def test_reasoning_effort_enables_thinking_and_drops_sampling_parameters() -> None:
    body = to_anthropic(reasoning_effort="medium", max_completion_tokens=16000, temperature=0.2)

    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert "temperature" not in body


def test_reasoning_budget_stays_below_max_tokens() -> None:
    assert (
        to_anthropic(reasoning_effort="high", max_tokens=8000)["thinking"]["budget_tokens"] == 7999
    )


@pytest.mark.parametrize(("effort", "max_tokens"), [("minimal", 8000), ("low", 1024)])
def test_reasoning_effort_without_room_for_a_budget_leaves_thinking_off(
    effort: str, max_tokens: int
) -> None:
    assert "thinking" not in to_anthropic(reasoning_effort=effort, max_tokens=max_tokens)


def test_json_schema_response_format_becomes_anthropic_native_structured_output() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "w",
            "schema": WEATHER_SCHEMA,
            "strict": True,
            "description": "The weather asked for.",
        },
    }
    body = to_anthropic(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        response_format=response_format,
    )

    assert body["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}
    assert body["system"] == "Be brief.\n\nThe JSON output: The weather asked for."


def test_json_object_response_format_asks_for_any_object_and_text_for_nothing() -> None:
    assert to_anthropic(response_format={"type": "json_object"})["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    assert "output_config" not in to_anthropic(response_format={"type": "text"})


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        (
            {"type": "json_schema", "json_schema": {"name": "w"}},
            "response_format.json_schema.schema",
        ),
        ("json", "response_format"),
    ],
)
def test_a_response_format_claude_cannot_carry_is_refused(response_format: Any, param: str) -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_anthropic(response_format=response_format)

    assert excinfo.value.param == param


# ============================================================ Anthropic → OpenAI


def test_anthropic_request_becomes_an_openai_request_for_the_upstream_model() -> None:
    assert to_openai(system="Be brief.") == {
        "model": GPT,
        "max_tokens": 512,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
    }


def test_system_text_blocks_become_one_system_message_without_cache_control() -> None:
    system = [
        {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Today is Monday."},
    ]
    body = to_openai(system=system)

    assert body["messages"][0] == {
        "role": "system",
        "content": "You are helpful.\n\nToday is Monday.",
    }


def test_base64_image_block_becomes_a_data_url_part() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A"},
    }
    text = {"type": "text", "text": "What is this?", "cache_control": {"type": "ephemeral"}}
    body = to_openai(messages=[{"role": "user", "content": [image, text]}])

    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A"}},
        {"type": "text", "text": "What is this?"},
    ]


def test_tool_use_blocks_become_assistant_tool_calls_and_thinking_is_dropped() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Need weather.", "signature": "EqQB"},
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    }
    body = to_openai(messages=[{"role": "user", "content": "Weather?"}, assistant])

    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [weather_call("toolu_1", '{"city":"Paris"}')],
    }


def test_tool_results_become_tool_messages_before_the_rest_of_the_user_turn() -> None:
    user = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}],
            },
            {"type": "text", "text": "Thanks"},
        ],
    }
    body = to_openai(messages=[user])

    assert body["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "line 1\n\nline 2"},
        {"role": "user", "content": "Thanks"},
    ]


def test_tool_result_error_is_marked_in_the_tool_message() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": "city unknown",
        "is_error": True,
    }
    body = to_openai(messages=[{"role": "user", "content": [result]}])

    assert body["messages"] == [
        {"role": "tool", "tool_call_id": "t", "content": "Error: city unknown"}
    ]


def test_image_inside_a_tool_result_is_refused() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    result = {"type": "tool_result", "tool_use_id": "t", "content": [image]}
    with pytest.raises(BadRequest) as excinfo:
        to_openai(messages=[{"role": "user", "content": [result]}])

    assert excinfo.value.param == "messages[0].content[0].content[0]"


def test_stop_sequences_become_stop_and_sampling_is_kept() -> None:
    body = to_openai(stop_sequences=["END"], temperature=0.5, top_p=0.9)

    assert (body["stop"], body["temperature"], body["top_p"]) == (["END"], 0.5, 0.9)


def test_top_k_is_refused_naming_it() -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_openai(top_k=40)

    assert excinfo.value.param == "top_k"


def test_output_config_format_becomes_a_strict_json_schema_response_format() -> None:
    output_config = {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}, "effort": "low"}
    body = to_openai(output_config=output_config)

    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": WEATHER_SCHEMA, "strict": True},
    }
    assert body["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("output_config", "param"),
    [
        ({"format": {"type": "xml"}}, "output_config.format.type"),
        ({"format": {"type": "json_schema"}}, "output_config.format.schema"),
        ("json", "output_config"),
    ],
)
def test_an_output_config_gpt_cannot_carry_is_refused(output_config: Any, param: str) -> None:
    with pytest.raises(BadRequest) as excinfo:
        to_openai(output_config=output_config)

    assert excinfo.value.param == param


def test_anthropic_tools_become_function_tools() -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": WEATHER_SCHEMA,
            "cache_control": {"type": "ephemeral"},
        }
    ]

    assert to_openai(tools=tools)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "any"}, "required"),
        ({"type": "tool", "name": "ping"}, {"type": "function", "function": {"name": "ping"}}),
    ],
)
def test_anthropic_tool_choice_maps_to_the_openai_tool_choice(
    choice: dict[str, Any], expected: Any
) -> None:
    tools = [{"name": "ping", "input_schema": {"type": "object"}}]
    assert to_openai(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_disable_parallel_tool_use_becomes_parallel_tool_calls_false() -> None:
    tools = [{"name": "ping", "input_schema": {"type": "object"}}]
    body = to_openai(tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True})

    assert body["parallel_tool_calls"] is False


def test_server_tools_are_refused() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    with pytest.raises(BadRequest) as excinfo:
        to_openai(tools=tools)

    assert excinfo.value.param == "tools[0].type"


def test_metadata_user_id_becomes_user() -> None:
    assert to_openai(metadata={"user_id": "user-42"})["user"] == "user-42"


def test_streaming_request_asks_for_usage_in_the_stream() -> None:
    body = to_openai(stream=True)

    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_thinking_option_is_dropped() -> None:
    body = to_openai(max_tokens=8000, thinking={"type": "enabled", "budget_tokens": 2048})

    assert "thinking" not in body
    assert "reasoning_effort" not in body


# ============================================================ both ways


def test_tool_conversation_survives_a_round_trip_through_anthropic() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [weather_call("call_1", '{"city":"Paris"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "assistant", "content": "It is 18°C."},
    ]
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
    ]
    anthropic_body = openai_request_to_anthropic(
        {"model": "alias", "messages": messages, "tools": tools, "max_tokens": 100}, CLAUDE
    )
    back = anthropic_request_to_openai(anthropic_body, GPT)

    assert back["messages"] == messages
    assert back["tools"] == tools
    assert back["max_tokens"] == 100


# --- time linear in the number of messages (a client controls it) -------------------------

SAME_ROLE_RUNS = {
    "user text": {"role": "user", "content": "hi"},
    "user parts": {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    "tool results": {"role": "tool", "tool_call_id": "call_1", "content": "22 C"},
    "assistant text": {"role": "assistant", "content": "hello"},
    "assistant tool calls": {
        "role": "assistant",
        "content": None,
        "tool_calls": [weather_call("call_1", '{"city": "Paris"}')],
    },
    "system": {"role": "system", "content": "be brief"},
}


@pytest.mark.parametrize("message", SAME_ROLE_RUNS.values(), ids=SAME_ROLE_RUNS.keys())
def test_a_run_of_same_role_messages_translates_to_anthropic_in_linear_time(
    message: dict[str, Any],
) -> None:
    # Merging each message into the turn before by copying it took quadratic time: 16,000
    # user messages took seconds, and froze the gateway meanwhile.
    def body(n: int) -> dict[str, Any]:
        return {"model": "m", "messages": [message] * n + [{"role": "user", "content": "go"}]}

    ratio = growth(lambda b: openai_request_to_anthropic(b, CLAUDE), body, 4000)
    assert ratio < LINEAR_GROWTH_LIMIT


def test_tool_results_merged_from_many_messages_still_come_first_in_the_user_turn() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "assistant", "content": None, "tool_calls": [weather_call("a", "{}")]},
        {"role": "user", "content": "before"},
        {"role": "tool", "tool_call_id": "a", "content": "one"},
        {"role": "user", "content": "after"},
        {"role": "tool", "tool_call_id": "b", "content": "two"},
    ]
    user_turn = to_anthropic(messages=messages)["messages"][1]["content"]
    assert [block.get("content") or block.get("text") for block in user_turn] == [
        "one",
        "two",
        "before",
        "after",
    ]


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}] * 3},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
    ],
    ids=["text", "parts", "tool use", "tool result"],
)
def test_messages_translate_to_openai_in_linear_time(message: dict[str, Any]) -> None:
    def body(n: int) -> dict[str, Any]:
        return {"model": "m", "max_tokens": 5, "messages": [message] * n}

    assert growth(lambda b: anthropic_request_to_openai(b, GPT), body, 4000) < LINEAR_GROWTH_LIMIT
