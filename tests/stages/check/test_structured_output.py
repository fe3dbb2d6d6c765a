"""Structured output, validated (stages/check/structured_output.py), through both SDKs, whole
and streamed, same format and across: a JSON answer invalid then valid after its corrective
retry, invalid twice (422 or flagged), cut at max_tokens, a streamed invalid answer (the
format's error event, which the SDK raises on), a buffered stream whose retry stays hidden,
tool input that does not match the tool's schema, a schema named by a request header; each
outcome on the reply's header and in the ledger.

The simulator is scripted on the latest user turn: the first answer on the prompt, the
second on the gateway's feedback, which quotes the start of the wrong answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from tests.support import GATEWAY_KEY, serve_gateway

from tollhouse.ports.ledger.record import CallRecord
from tollhouse.ports.ledger.sqlite import SQLiteLedgerStore
from tollhouse.server.runner import BackgroundServer

ORDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "product_name": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
    },
    "required": ["product_name", "quantity"],
    "additionalProperties": False,
}
VALID = {"product_name": "green tea", "quantity": 2}
TOOL = "record_order"
SCRIPTS: list[dict[str, Any]] = [
    # Second answers, on the feedback (which quotes the first answer's start).
    {"pattern": "it starts 'Prose twice", "reply": "Prose twice, still no JSON"},
    {"pattern": "it starts 'Prose once", "reply": json.dumps(VALID)},
    {"pattern": "cut at its length limit", "reply": json.dumps(VALID)},
    {"pattern": '"two" is not of type', "tool_call": {"name": TOOL, "input": VALID}},
    {
        "pattern": '"three" is not of type|^use the tool worse',
        "tool_call": {"name": TOOL, "input": {"product_name": "tea", "quantity": "three"}},
    },
    # First answers, on the prompt.
    {"pattern": "^answer once", "reply": "Prose once: two green teas"},
    {"pattern": "^answer twice", "reply": "Prose twice: two green teas"},
    {"pattern": "^answer valid", "reply": json.dumps(VALID)},
    {"pattern": "^answer long", "reply": json.dumps({**VALID, "note": "x" * 400})},
    {
        "pattern": "^use the tool badly",
        "tool_call": {"name": TOOL, "input": {"product_name": "tea", "quantity": "two"}},
    },
]
ORDER_TOOL_ANTHROPIC = {"name": TOOL, "description": "Record an order", "input_schema": ORDER}
ORDER_TOOL_OPENAI = {
    "type": "function",
    "function": {"name": TOOL, "description": "Record an order", "parameters": ORDER},
}


def _route(provider: str, model: str, **policy: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], "structured_output": policy}


def _sim(fmt: str) -> dict[str, Any]:
    return {"type": "simulator", "simulator": {"format": fmt, "scripts": SCRIPTS}}


def config(ledger: Path) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for family, provider, model in (
        ("claude", "sim-anthropic", "claude-haiku-4-5-20251001"),
        ("gpt", "sim-openai", "gpt-4o-mini"),
    ):
        routes[f"{family}-json"] = _route(provider, model, schema="order")
        routes[f"{family}-flag"] = _route(provider, model, schema="order", on_invalid="flag")
        routes[f"{family}-buffer"] = _route(provider, model, schema="order", stream="buffer")
        routes[f"{family}-tools"] = _route(provider, model, tool_inputs=True)
        routes[f"{family}-asked"] = _route(provider, model)
        routes[f"{family}-asked-buffer"] = _route(provider, model, stream="buffer")
        routes[f"{family}-plain"] = {"deployments": [{"provider": provider, "model": model}]}
        routes[f"{family}-flag-cached"] = {
            **_route(provider, model, schema="order", on_invalid="flag"),
            "cache": {"ttl_seconds": 60},
        }
    return {
        "providers": {"sim-anthropic": _sim("anthropic"), "sim-openai": _sim("openai")},
        "schemas": {"order": ORDER},
        "models": routes,
        "lifecycle": {"retired": "allow"},
        "ledger": {"sqlite_path": str(ledger), "spill_path": None, "flush_interval": 0.05},
    }


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("structured") / "ledger.db"


@pytest.fixture(scope="module")
def gateway(ledger_path: Path) -> Iterator[BackgroundServer]:
    server = serve_gateway(config(ledger_path))
    yield server
    server.stop()


def claude(server: BackgroundServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)


def gpt(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


def recorded(path: Path, request_id: str) -> CallRecord:
    """The ledger's record of `request_id`, once written (records go in batches)."""

    async def find() -> CallRecord | None:
        store = SQLiteLedgerStore(path)
        try:
            records = await store.query(limit=1000, filters={"request_id": request_id})
        finally:
            await store.aclose()
        return records[0] if records else None

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = asyncio.run(find())
        if record is not None:
            return record
        time.sleep(0.05)
    raise AssertionError(f"no ledger record of {request_id}")


def ask(
    server: BackgroundServer, sdk: str, model: str, prompt: str, **options: Any
) -> tuple[str, dict[str, str]]:
    """A whole answer's text and the reply's headers, through `sdk`."""
    user = [{"role": "user", "content": prompt}]
    if sdk == "anthropic":
        raw = claude(server).messages.with_raw_response.create(
            model=model, max_tokens=options.pop("max_tokens", 400), messages=user, **options
        )
        text = "".join(b.text for b in raw.parse().content if b.type == "text")
        return text, dict(raw.headers)
    reply = gpt(server).chat.completions.with_raw_response.create(
        model=model, messages=user, **options
    )  # type: ignore[call-overload]
    return reply.parse().choices[0].message.content or "", dict(reply.headers)


PAIRS = [
    ("anthropic", "claude"),
    ("openai", "gpt"),
    ("anthropic", "gpt"),  # across formats both ways
    ("openai", "claude"),
]


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_invalid_json_is_retried_once_with_the_error_fed_back_then_valid(
    gateway: BackgroundServer, ledger_path: Path, sdk: str, family: str
) -> None:
    text, headers = ask(gateway, sdk, f"{family}-json", "answer once")

    assert json.loads(text) == VALID
    assert headers["x-tollhouse-attempts"] == "2"
    assert headers["x-tollhouse-structured-output"] == "retried"
    record = recorded(ledger_path, headers["x-tollhouse-request-id"])
    assert (record.structured_output, record.status, record.attempts) == ("retried", 200, 2)


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_a_valid_answer_passes_at_once_marked_valid(
    gateway: BackgroundServer, ledger_path: Path, sdk: str, family: str
) -> None:
    text, headers = ask(gateway, sdk, f"{family}-json", "answer valid")

    assert json.loads(text) == VALID
    assert headers["x-tollhouse-attempts"] == "1"
    assert headers["x-tollhouse-structured-output"] == "valid"
    assert recorded(ledger_path, headers["x-tollhouse-request-id"]).structured_output == "valid"


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_invalid_twice_is_refused_with_422_naming_the_error(
    gateway: BackgroundServer, ledger_path: Path, sdk: str, family: str
) -> None:
    error_class = (
        anthropic.UnprocessableEntityError
        if sdk == "anthropic"
        else openai.UnprocessableEntityError
    )
    with pytest.raises(error_class) as caught:
        ask(gateway, sdk, f"{family}-json", "answer twice")

    error = caught.value
    assert "after a corrective retry" in error.message
    assert "the answer is not JSON" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    record = recorded(ledger_path, error.response.headers["x-tollhouse-request-id"])
    assert (record.structured_output, record.status, record.attempts) == ("invalid", 422, 2)


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_invalid_twice_under_flag_is_passed_on_and_recorded(
    gateway: BackgroundServer, ledger_path: Path, sdk: str
) -> None:
    text, headers = ask(gateway, sdk, "claude-flag", "answer twice")

    assert text == "Prose twice, still no JSON"
    assert headers["x-tollhouse-structured-output"] == "invalid"
    assert recorded(ledger_path, headers["x-tollhouse-request-id"]).structured_output == "invalid"


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_an_answer_flagged_invalid_is_never_cached_and_a_valid_one_is(
    gateway: BackgroundServer, sdk: str
) -> None:
    for prompt, again in (("answer twice", "miss"), ("answer valid", "hit")):
        _, first = ask(gateway, sdk, "claude-flag-cached", prompt)
        text, second = ask(gateway, sdk, "claude-flag-cached", prompt)
        assert first["x-tollhouse-cache"] == "miss"
        assert second["x-tollhouse-cache"] == again, prompt
        if again == "miss":  # checked again, not replayed
            assert second["x-tollhouse-structured-output"] == "invalid"
        else:
            assert json.loads(text) == VALID


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_json_cut_at_max_tokens_is_retried_with_the_cut_fed_back(
    gateway: BackgroundServer, sdk: str, family: str
) -> None:
    limit = {"max_tokens": 20}
    text, headers = ask(gateway, sdk, f"{family}-json", "answer long", **limit)

    assert json.loads(text) == VALID
    assert headers["x-tollhouse-structured-output"] == "retried"


def stream_text(server: BackgroundServer, sdk: str, model: str, prompt: str) -> str:
    user = [{"role": "user", "content": prompt}]
    if sdk == "anthropic":
        with claude(server).messages.stream(model=model, max_tokens=400, messages=user) as stream:
            return "".join(stream.text_stream)
    chunks = gpt(server).chat.completions.create(model=model, messages=user, stream=True)  # type: ignore[call-overload]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_a_streamed_invalid_answer_ends_with_an_error_event_the_sdk_raises(
    gateway: BackgroundServer, sdk: str, family: str
) -> None:
    error_class = anthropic.APIStatusError if sdk == "anthropic" else openai.APIError
    with pytest.raises(error_class, match="the answer is not JSON"):
        stream_text(gateway, sdk, f"{family}-json", "answer twice")


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_a_streamed_valid_answer_ends_normally(
    gateway: BackgroundServer, sdk: str, family: str
) -> None:
    assert json.loads(stream_text(gateway, sdk, f"{family}-json", "answer valid")) == VALID


def test_a_streamed_invalid_answer_is_recorded_invalid(
    gateway: BackgroundServer, ledger_path: Path
) -> None:
    user = [{"role": "user", "content": "answer twice"}]
    with claude(gateway).messages.stream(model="claude-json", max_tokens=400, messages=user) as s:
        request_id = s.response.headers["x-tollhouse-request-id"]
        with pytest.raises(anthropic.APIStatusError):
            s.until_done()

    assert recorded(ledger_path, request_id).structured_output == "invalid"


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_a_streamed_invalid_answer_under_flag_ends_normally(
    gateway: BackgroundServer, sdk: str
) -> None:
    assert stream_text(gateway, sdk, "gpt-flag", "answer twice") == "Prose twice: two green teas"


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_a_buffered_stream_hides_its_retry_and_streams_the_valid_answer(
    gateway: BackgroundServer, sdk: str, family: str
) -> None:
    assert json.loads(stream_text(gateway, sdk, f"{family}-buffer", "answer once")) == VALID


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_a_buffered_stream_invalid_twice_is_refused_before_it_starts(
    gateway: BackgroundServer, ledger_path: Path, sdk: str
) -> None:
    error_class = (
        anthropic.UnprocessableEntityError
        if sdk == "anthropic"
        else openai.UnprocessableEntityError
    )
    with pytest.raises(error_class) as caught:
        stream_text(gateway, sdk, "claude-buffer", "answer twice")

    record = recorded(ledger_path, caught.value.response.headers["x-tollhouse-request-id"])
    assert (record.structured_output, record.stream, record.status) == ("invalid", True, 422)


def tool_call(server: BackgroundServer, sdk: str, model: str, prompt: str) -> Any:
    """The input of the answer's tool call, and the reply's headers."""
    user = [{"role": "user", "content": prompt}]
    if sdk == "anthropic":
        raw = claude(server).messages.with_raw_response.create(
            model=model,
            max_tokens=400,
            messages=user,  # type: ignore[arg-type]
            tools=[ORDER_TOOL_ANTHROPIC],  # type: ignore[list-item]
        )
        uses = [b for b in raw.parse().content if b.type == "tool_use"]
        return uses[0].input, dict(raw.headers)
    reply = gpt(server).chat.completions.with_raw_response.create(
        model=model,
        messages=user,  # type: ignore[arg-type]
        tools=[ORDER_TOOL_OPENAI],  # type: ignore[list-item]
    )
    calls = reply.parse().choices[0].message.tool_calls or []
    return json.loads(calls[0].function.arguments), dict(reply.headers)  # type: ignore[union-attr]


@pytest.mark.parametrize(("sdk", "family"), PAIRS)
def test_tool_input_not_matching_the_tools_schema_is_retried_with_the_error_as_tool_result(
    gateway: BackgroundServer, sdk: str, family: str
) -> None:
    given, headers = tool_call(gateway, sdk, f"{family}-tools", "use the tool badly")

    assert given == VALID
    assert headers["x-tollhouse-structured-output"] == "retried"


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_tool_input_invalid_twice_is_refused_naming_the_tool(
    gateway: BackgroundServer, sdk: str
) -> None:
    error_class = (
        anthropic.UnprocessableEntityError
        if sdk == "anthropic"
        else openai.UnprocessableEntityError
    )
    with pytest.raises(error_class) as caught:
        tool_call(gateway, sdk, "claude-tools", "use the tool worse")

    assert "input of tool 'record_order': at /quantity" in caught.value.message


def test_a_request_header_names_a_schema_on_a_route_without_one(
    gateway: BackgroundServer,
) -> None:
    text, headers = ask(
        gateway,
        "openai",
        "gpt-plain",
        "answer once",
        extra_headers={"x-tollhouse-schema": "order"},
    )

    assert json.loads(text) == VALID
    assert headers["x-tollhouse-structured-output"] == "retried"


def test_a_route_without_a_requirement_passes_prose_unmarked(gateway: BackgroundServer) -> None:
    text, headers = ask(gateway, "anthropic", "claude-plain", "answer twice")

    assert text == "Prose twice: two green teas"
    assert "x-tollhouse-structured-output" not in headers


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_a_header_naming_no_defined_schema_is_refused_with_400(
    gateway: BackgroundServer, sdk: str
) -> None:
    error_class = anthropic.BadRequestError if sdk == "anthropic" else openai.BadRequestError
    with pytest.raises(error_class, match="no schema named 'nope'"):
        ask(gateway, sdk, "claude-plain", "hi", extra_headers={"x-tollhouse-schema": "nope"})


def test_the_responses_api_on_a_structured_route_is_refused_saying_where_it_is_checked(
    gateway: BackgroundServer,
) -> None:
    with pytest.raises(openai.BadRequestError, match="/v1/chat/completions"):
        gpt(gateway).responses.create(model="gpt-json", input="answer once")


class Order(pydantic.BaseModel):
    product_name: str
    quantity: int


@pytest.mark.parametrize("family", ["claude", "gpt"])
def test_openai_parse_gets_the_object_its_response_format_asks_for_after_a_retry(
    gateway: BackgroundServer, family: str
) -> None:
    completion = gpt(gateway).chat.completions.parse(
        model=f"{family}-asked",
        messages=[{"role": "user", "content": "answer once"}],
        response_format=Order,
    )

    assert completion.choices[0].message.parsed == Order(**VALID)


@pytest.mark.parametrize("family", ["claude", "gpt"])
def test_openai_streamed_parse_on_a_buffering_route_gets_the_object_unseen_retry(
    gateway: BackgroundServer, family: str
) -> None:
    with gpt(gateway).chat.completions.stream(
        model=f"{family}-asked-buffer",
        messages=[{"role": "user", "content": "answer once"}],
        response_format=Order,
    ) as stream:
        completion = stream.get_final_completion()

    assert completion.choices[0].message.parsed == Order(**VALID)


@pytest.mark.parametrize("family", ["claude", "gpt"])
def test_anthropic_parse_gets_the_object_its_output_format_asks_for_after_a_retry(
    gateway: BackgroundServer, family: str
) -> None:
    message = claude(gateway).messages.parse(
        model=f"{family}-asked",
        max_tokens=400,
        messages=[{"role": "user", "content": "answer once"}],
        output_format=Order,
    )

    assert message.parsed_output == Order(**VALID)


def test_the_schema_a_request_asks_for_is_refused_when_still_unmet(
    gateway: BackgroundServer,
) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="the answer is not JSON"):
        gpt(gateway).chat.completions.parse(
            model="claude-asked",
            messages=[{"role": "user", "content": "answer twice"}],
            response_format=Order,
        )


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_the_answer_sent_back_is_billed_with_the_one_the_call_ends_with(
    gateway: BackgroundServer, ledger_path: Path, sdk: str
) -> None:
    _, headers = ask(gateway, sdk, "claude-json", "answer once")

    record = recorded(ledger_path, headers["x-tollhouse-request-id"])
    steps = record.metadata["iterations"]
    assert [step["type"] for step in steps] == ["sent_back", "message"]
    assert record.output_tokens == sum(step["output_tokens"] for step in steps)
    assert record.input_tokens == sum(step["input_tokens"] for step in steps)
    assert steps[1]["input_tokens"] > steps[0]["input_tokens"]  # the corrective turns
    assert record.cost_usd is not None
    assert record.output_cost_usd is not None
