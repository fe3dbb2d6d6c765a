"""Property: whatever a client sends, the gateway answers without a 5xx, and every refusal
is a well-formed error body in the format of the endpoint that was called."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.json_strategies import json_values
from tests.support import GATEWAY_KEY

blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "bogus"])},
    optional={
        "text": json_values,
        "source": json_values,
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": json_values,
        "content": json_values,
        "cache_control": json_values,
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "robot"]) | json_values},
        optional={
            "content": st.text(max_size=30) | st.lists(blocks, max_size=3) | json_values,
            "tool_calls": json_values,
            "tool_call_id": json_values,
            "name": json_values,
        },
    ),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["claude-haiku-4-5", "gpt-4o-mini", "no-such-model"])
        | json_values,
        "max_tokens": st.integers(-3, 300) | json_values,
        "max_completion_tokens": st.integers(-3, 300) | json_values,
        "messages": messages | json_values,
        "system": st.text(max_size=20) | st.lists(blocks, max_size=2) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "stop_sequences": json_values,
        "stop": json_values,
        "temperature": json_values,
        "metadata": json_values,
        "n": st.integers(-1, 3) | json_values,
        "user": json_values,
    },
)
payloads = bodies.map(orjson.dumps) | json_values.map(orjson.dumps) | st.binary(max_size=200)

ENDPOINTS = {
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
    "/v1/chat/completions": "openai",
}


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    headers = {
        "x-api-key": GATEWAY_KEY,
        "authorization": f"Bearer {GATEWAY_KEY}",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=10) as client:
        yield client


def assert_well_formed_error(fmt: str, body: Any) -> None:
    if fmt == "anthropic":
        assert body["type"] == "error"
        assert isinstance(body["error"]["type"], str)
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["message"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(sorted(ENDPOINTS)), payload=payloads)
def test_no_input_yields_a_5xx_and_every_error_is_well_formed(
    http: httpx.Client, path: str, payload: bytes
) -> None:
    response = http.post(path, content=payload)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_well_formed_error(ENDPOINTS[path], response.json())
    else:
        assert response.status_code == 200
        if response.headers["content-type"].startswith("application/json"):
            assert isinstance(response.json(), dict)
