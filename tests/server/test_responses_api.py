"""The OpenAI Responses API (`POST /v1/responses`, `GET /v1/responses/{id}`) through the
official `openai` SDK: passed through to an upstream that speaks it (the simulated OpenAI),
translated to Chat Completions (an OpenAI-compatible server) and to Anthropic Messages;
streamed and not, with tools, a function-call loop, structured output, reasoning and
`previous_response_id` held by the gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from tests.observability.test_call_ledger import gateway_with, read_sqlite
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, serve_gateway

QUESTION = "Tell me how the aqueducts of Rome carried water over the hills, " * 3
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
# The model names of http_gateway_url: passed through, translated to Chat Completions.
# Of gateway_url: passed through, translated to Anthropic Messages.
PASSTHROUGH, TO_CHAT, TO_MESSAGES = "gpt-4o-mini", "llama-3.1-8b", "claude-haiku-4-5"
ALL = [
    ("http", PASSTHROUGH),
    ("http", TO_CHAT),
    ("in_process", TO_MESSAGES),
]


@pytest.fixture
def client_for(request: pytest.FixtureRequest) -> Any:
    """A client of the gateway the test's model is served on (see ALL)."""

    def make(where: str) -> openai.OpenAI:
        fixture = "http_gateway_url" if where == "http" else "gateway_url"
        url = request.getfixturevalue(fixture)
        return openai.OpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)

    return make


@pytest.mark.parametrize(("where", "model"), ALL)
def test_a_response_is_answered_with_text_and_usage(
    client_for: Any, where: str, model: str
) -> None:
    raw = client_for(where).responses.with_raw_response.create(
        model=model, input=QUESTION, instructions="Be brief.", max_output_tokens=200
    )
    response = raw.parse()
    assert response.id.startswith("resp_th_")
    assert response.status == "completed"
    assert response.output_text
    assert response.usage is not None
    assert response.usage.input_tokens > 20
    assert response.usage.output_tokens > 0
    assert raw.headers["x-tollhouse-request-id"] == response.id.removeprefix("resp_")


@pytest.mark.parametrize(("where", "model"), ALL)
def test_a_streamed_response_arrives_as_typed_events(
    client_for: Any, where: str, model: str
) -> None:
    with client_for(where).responses.stream(model=model, input=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text != ""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.usage is not None
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize(("where", "model"), ALL)
@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_loop_continues_by_previous_response_id(
    client_for: Any, where: str, model: str, stream: bool
) -> None:
    client = client_for(where)

    def create(**request: Any) -> Any:
        if not stream:
            return client.responses.create(model=model, tools=[WEATHER], **request)
        with client.responses.stream(model=model, tools=[WEATHER], **request) as events:
            return events.get_final_response()

    first = create(input="What is the weather in Rome?", tool_choice="required")
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert "city" in json.loads(calls[0].arguments)
    second = create(
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 24 C"}
        ],
        tool_choice="none",
    )
    assert second.previous_response_id == first.id
    assert second.output_text
    assert second.usage.input_tokens > first.usage.input_tokens


@pytest.mark.parametrize(("where", "model"), ALL)
def test_previous_response_id_answers_with_the_whole_history(
    client_for: Any, where: str, model: str
) -> None:
    client = client_for(where)
    first = client.responses.create(model=model, input=QUESTION)
    second = client.responses.create(model=model, input="And then?", previous_response_id=first.id)
    whole = client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "And then?"},
        ],
    )
    assert second.usage.input_tokens == whole.usage.input_tokens
    assert second.usage.input_tokens > first.usage.input_tokens + 10


def test_a_stored_response_is_retrieved_and_an_unknown_one_is_not_found(client_for: Any) -> None:
    client = client_for("in_process")
    with client.responses.stream(model=PASSTHROUGH, input="hi") as stream:
        made = stream.get_final_response()
    fetched = client.responses.retrieve(made.id)
    assert fetched.id == made.id
    assert fetched.output_text == made.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_th_unknown")
    with pytest.raises(openai.NotFoundError) as refused:
        client.responses.create(model=PASSTHROUGH, input="hi", previous_response_id="resp_nope")
    assert refused.value.code == "previous_response_not_found"
    assert refused.value.param == "previous_response_id"


def test_a_response_not_stored_is_neither_retrieved_nor_continued(client_for: Any) -> None:
    client = client_for("in_process")
    made = client.responses.create(model=PASSTHROUGH, input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=PASSTHROUGH, input="more", previous_response_id=made.id)


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize(("where", "model"), [("http", PASSTHROUGH), ("http", TO_CHAT)])
def test_text_format_json_schema_parses_into_the_sdks_model(
    client_for: Any, where: str, model: str
) -> None:
    parsed = client_for(where).responses.parse(model=model, input="Name a city.", text_format=City)
    assert isinstance(parsed.output_parsed, City)


def test_reasoning_items_pass_through_and_are_counted(client_for: Any) -> None:
    client = client_for("in_process")
    first = client.responses.create(model=PASSTHROUGH, input=QUESTION, reasoning={"effort": "low"})
    assert [item.type for item in first.output] == ["reasoning", "message"]
    assert first.usage.output_tokens_details.reasoning_tokens > 0
    # The reasoning item carries no encrypted content: as history it is left out.
    second = client.responses.create(
        model=PASSTHROUGH, input="And then?", previous_response_id=first.id
    )
    assert second.output_text


def test_a_tool_no_translation_carries_is_refused_naming_it(client_for: Any) -> None:
    with pytest.raises(openai.BadRequestError, match="web_search"):
        client_for("http").responses.create(
            model=TO_CHAT, input="news?", tools=[{"type": "web_search"}]
        )


def test_a_bad_request_is_refused_in_the_openai_shape(client_for: Any) -> None:
    with pytest.raises(openai.BadRequestError, match="input"):
        client_for("in_process").responses.create(model=PASSTHROUGH)  # type: ignore[call-overload]


def test_a_response_falls_back_to_another_provider_and_format() -> None:
    config = {
        **IN_PROCESS_CONFIG,
        "providers": {
            "primary": simulator("openai", {"fault": "529"}),
            "spare": simulator("anthropic"),
        },
        "models": {
            "m": {
                "deployments": [
                    {"provider": "primary", "model": "gpt-4o-mini"},
                    {"provider": "spare", "model": "claude-haiku-4-5"},
                ]
            }
        },
    }
    server = serve_gateway(config)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        raw = client.responses.with_raw_response.create(model="m", input=QUESTION)
        with client.responses.stream(model="m", input=QUESTION) as stream:
            streamed = stream.get_final_response()
    finally:
        server.stop()
    assert raw.parse().output_text
    assert raw.headers["x-tollhouse-served-by"] == "spare/claude-haiku-4-5"
    assert raw.headers["x-tollhouse-fallback"] == "true"
    assert streamed.output_text


def test_responses_are_recorded_in_the_ledger_with_their_usage(tmp_path: Path) -> None:
    server = gateway_with(tmp_path)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
        whole = client.responses.create(model=TO_MESSAGES, input=QUESTION)
        with client.responses.stream(model=PASSTHROUGH, input=QUESTION) as stream:
            streamed = stream.get_final_response()
    finally:
        server.stop()
    records = read_sqlite(tmp_path / "ledger.db")
    assert [r.endpoint for r in records] == ["/v1/responses"] * 2
    assert [r.output_tokens for r in records] == [
        whole.usage.output_tokens,
        streamed.usage.output_tokens,
    ]
    assert all(r.cost_usd and r.cost_usd > 0 for r in records)
