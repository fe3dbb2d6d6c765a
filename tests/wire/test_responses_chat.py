"""Responses ↔ Chat Completions translation, as pure functions: what each request field
becomes, what is refused rather than dropped, and a chat stream as Responses events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollhouse.errors import BadRequest
from tollhouse.wire.responses_chat import (
    ChatToResponsesStream,
    chat_answer_to_response,
    responses_request_to_chat,
)
from tollhouse.wire.sse import SSEParser, frame_json


def test_instructions_input_and_settings_become_a_chat_request() -> None:
    chat = responses_request_to_chat(
        {
            "model": "m",
            "instructions": "Be brief.",
            "input": "hi",
            "max_output_tokens": 50,
            "stream": True,
            "reasoning": {"effort": "low"},
            "text": {
                "format": {"type": "json_schema", "name": "city", "schema": {"type": "object"}}
            },
        },
        "upstream-m",
    )
    assert chat == {
        "model": "upstream-m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 50,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": {"type": "object"}},
        },
        "reasoning_effort": "low",
    }


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    chat = responses_request_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
                {"role": "user", "content": "weather?"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Let me look."}],
                },
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
        },
        "m",
    )
    assert chat["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "w", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("tools", [{"type": "web_search"}], "web_search"),
        ("input", [{"type": "item_reference", "id": "msg_1"}], "item_reference"),
        ("tool_choice", {"type": "file_search"}, "file_search"),
        ("text", {"format": {"type": "grammar"}}, "grammar"),
        ("background", True, "background"),
        ("conversation", "conv_1", "conversation"),
    ],
)
def test_what_chat_cannot_carry_is_refused_naming_it(field: str, value: Any, named: str) -> None:
    body: dict[str, Any] = {"model": "m", "input": "hi", field: value}
    with pytest.raises(BadRequest, match=named):
        responses_request_to_chat(body, "m")


def test_a_cut_chat_answer_is_an_incomplete_response_with_its_usage() -> None:
    response = chat_answer_to_response(
        {
            "choices": [
                {"message": {"role": "assistant", "content": "par"}, "finish_reason": "length"}
            ],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        },
        {"input": "hi", "max_output_tokens": 5},
        "resp_1",
        "m",
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "par"
    assert response["usage"]["input_tokens"] == 12
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 4}
    assert response["usage"]["output_tokens"] == 5


def _chunk(**delta: Any) -> bytes:
    return frame_json(None, {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def test_a_chat_stream_becomes_typed_events_ending_with_the_whole_response() -> None:
    translator = ChatToResponsesStream({"input": "hi"}, "resp_1", "m")
    chunks = [
        _chunk(role="assistant", content="Hel"),
        _chunk(content="lo"),
        _chunk(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "w", "arguments": ""}}]),
        _chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
        _chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Rome"}'}}]),
        frame_json(None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        frame_json(None, {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7}}),
        b"data: [DONE]\n\n",
    ]
    out: list[bytes] = []
    for event in SSEParser().feed(b"".join(chunks)):
        out.extend(translator.feed(event))
    out.extend(translator.finish())
    events = [orjson.loads(e.data) for e in SSEParser().feed(b"".join(out))]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    response = events[-1]["response"]
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][0]["content"][0]["text"] == "Hello"
    assert response["output"][1]["arguments"] == '{"city":"Rome"}'
    assert response["usage"]["total_tokens"] == 16
    assert translator.stop_reason == "tool_use"
    assert translator.usage["output_tokens"] == 7
    assert not translator.usage_estimated


def test_an_upstream_error_chunk_ends_the_stream_with_an_error_event() -> None:
    translator = ChatToResponsesStream({"input": "hi"}, "resp_1", "m")
    error = frame_json(None, {"error": {"message": "boom", "type": "server_error"}})
    out = [frame for event in SSEParser().feed(error) for frame in translator.feed(event)]
    events = [orjson.loads(e.data) for e in SSEParser().feed(b"".join(out))]
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error"]
    assert events[-1]["message"] == "boom"
    assert translator.finish() == []
