"""Property: whatever a client sends, the simulator answers (never raises, never a 5xx
unless a fault asked for one) and every refusal is a well-formed error in the format of the
endpoint that was called."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.json_strategies import json_values

from tollhouse.simulator.engine import Simulator

blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "bogus"])},
    optional={
        "text": st.text(max_size=10) | json_values,
        "id": st.sampled_from(["toolu_1", "call_1"]) | json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": st.sampled_from(["toolu_1"]) | json_values,
        "content": json_values,
        "cache_control": st.just({"type": "ephemeral"}) | json_values,
        "source": json_values,
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool"]) | json_values},
        optional={
            "content": st.text(max_size=20) | st.lists(blocks, max_size=3) | json_values,
            "tool_calls": json_values,
            "tool_call_id": json_values,
        },
    ),
    max_size=4,
)
tools = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["f", "g"]) | json_values,
            "type": st.sampled_from(["function", "custom"]) | json_values,
            "input_schema": json_values,
            "function": json_values,
        },
    ),
    max_size=2,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just("m") | json_values,
        "max_tokens": st.integers(-1, 3000) | json_values,
        "max_completion_tokens": st.integers(-1, 50) | json_values,
        "messages": messages | json_values,
        "system": st.text(max_size=10) | st.lists(blocks, max_size=2) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": json_values,
        "tools": tools | json_values,
        "tool_choice": st.sampled_from([{"type": "any"}, {"type": "tool", "name": "f"}, "required"])
        | json_values,
        "thinking": st.just({"type": "enabled", "budget_tokens": 1024}) | json_values,
        "stop_sequences": json_values,
        "stop": json_values,
        "n": st.integers(-1, 3) | json_values,
        "response_format": json_values,
        "output_config": json_values,
    },
)
payloads = bodies.map(orjson.dumps) | json_values.map(orjson.dumps) | st.binary(max_size=100)
PATHS = {
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
    "/v1/chat/completions": "openai",
}
SIMULATOR = Simulator()


def call(path: str, payload: bytes) -> tuple[int, bytes]:
    async def run() -> tuple[int, bytes]:
        response = await SIMULATOR.handle("POST", path, {}, payload)
        return response.status, await response.read()

    return asyncio.run(run())


def assert_well_formed_error(fmt: str, body: Any) -> None:
    if fmt == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["message"]


@settings(max_examples=400, deadline=None)
@given(path=st.sampled_from(sorted(PATHS)), payload=payloads)
def test_no_input_crashes_the_simulator_and_every_refusal_is_well_formed(
    path: str, payload: bytes
) -> None:
    status, body = call(path, payload)
    assert status in (200, 400), body
    if status == 400:
        assert_well_formed_error(PATHS[path], orjson.loads(body))
    elif body.startswith(b"{"):
        assert isinstance(orjson.loads(body), dict)
