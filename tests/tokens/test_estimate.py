"""The token estimate walks a whole request, whose size a client controls: linear time."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scaling import LINEAR_GROWTH_LIMIT, growth

from tollhouse.tokens.estimate import request_input_tokens

SHAPES: dict[str, Any] = {
    "messages": lambda n: {"messages": [{"role": "user", "content": "hello"}] * n},
    "parts": lambda n: {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}] * n}]
    },
    "tool results": lambda n: {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "content": [{"type": "text", "text": "ok"}]}]
                * n,
            }
        ]
    },
    "tool calls": lambda n: {
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}] * n}
        ]
    },
    "tools": lambda n: {"messages": [], "tools": [{"name": "f", "input_schema": {}}] * n},
}


@pytest.mark.parametrize("make", SHAPES.values(), ids=SHAPES.keys())
def test_estimate_takes_time_linear_in_the_request(make: Any) -> None:
    assert growth(request_input_tokens, make, 5000) < LINEAR_GROWTH_LIMIT


def test_estimate_counts_each_message_and_its_text() -> None:
    # 4 tokens of framing per message, one per 4 bytes of text.
    assert request_input_tokens({"messages": [{"role": "user", "content": "abcdefgh"}] * 3}) == 18
