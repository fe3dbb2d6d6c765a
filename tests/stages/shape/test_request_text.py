"""The text guardrails check, found in each client format, by scope."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.config.input_guardrails import Scope
from tollhouse.stages.shape.guardrails.request_text import RequestText
from tollhouse.types import WireFormat

ANTHROPIC = {
    "system": [{"type": "text", "text": "sys"}],
    "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "text", "text": "reply"}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "text", "text": "tool"}],
                },
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                {"type": "text", "text": "last"},
            ],
        },
    ],
}
CHAT = {
    "messages": [
        {"role": "developer", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
        {"role": "assistant", "content": "reply"},
        {"role": "tool", "tool_call_id": "c", "content": "tool"},
        {"role": "user", "content": "last"},
    ]
}
RESPONSES = {
    "instructions": "sys",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "reply"}],
        },
        {"type": "function_call_output", "call_id": "c", "output": "tool"},
        {"role": "user", "content": "last"},
    ],
}


@pytest.mark.parametrize(
    ("fmt", "body"),
    [("anthropic", ANTHROPIC), ("openai", CHAT), ("responses", RESPONSES)],
)
@pytest.mark.parametrize(
    ("scope", "texts"),
    [
        ("all", ["sys", "first", "reply", "tool", "last"]),
        ("user", ["first", "tool", "last"]),
        ("last_user", ["last"]),
    ],
)
def test_each_format_yields_the_texts_of_its_scope(
    fmt: WireFormat, body: dict[str, Any], scope: Scope, texts: list[str]
) -> None:
    assert [s.text for s in RequestText(body, fmt).in_scope(scope)] == texts


def test_editing_changes_a_copy_never_the_body_given() -> None:
    text = RequestText(CHAT, "openai")
    text.editable()[1].replace("changed")
    assert CHAT["messages"][1]["content"][0]["text"] == "first"
    assert text.body["messages"][1]["content"][0]["text"] == "changed"


def test_a_responses_string_input_and_embeddings_inputs_are_user_text() -> None:
    assert [s.text for s in RequestText({"input": "hi"}, "responses").in_scope("user")] == ["hi"]
    embeddings = {"model": "e", "input": ["a", "b"]}
    assert [s.text for s in RequestText(embeddings, "openai").in_scope("user")] == ["a", "b"]
