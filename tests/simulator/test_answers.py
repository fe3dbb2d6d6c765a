"""What the simulated model answers: deterministic per seed and conversation, scripted when
a rule matches, cut by stop sequences and max_tokens, usage consistent with the text."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson

from tollhouse.simulator.config import ScriptRule, SimulatorConfig
from tollhouse.simulator.engine import Simulator
from tollhouse.simulator.text import generate_text, stream_pieces, truncate_to_tokens
from tollhouse.tokens.estimate import text_tokens


def answer(simulator: Simulator, text: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": text}]}
    response = asyncio.run(
        simulator.handle("POST", "/v1/messages", {}, orjson.dumps({**body, **fields}))
    )
    doc: dict[str, Any] = orjson.loads(asyncio.run(response.read()))
    return doc


def text_of(doc: dict[str, Any]) -> str:
    return "".join(b.get("text", "") for b in doc["content"])


def test_same_seed_and_request_give_the_same_text() -> None:
    first = text_of(answer(Simulator(SimulatorConfig(seed=7)), "Tell me"))
    second = text_of(answer(Simulator(SimulatorConfig(seed=7)), "Tell me"))
    assert first == second


def test_another_seed_or_question_gives_another_text() -> None:
    base = text_of(answer(Simulator(SimulatorConfig(seed=7)), "Tell me"))
    assert text_of(answer(Simulator(SimulatorConfig(seed=8)), "Tell me")) != base
    assert text_of(answer(Simulator(SimulatorConfig(seed=7)), "Tell me more")) != base


def test_answers_are_about_reply_tokens_long() -> None:
    simulator = Simulator(SimulatorConfig(reply_tokens=100))
    lengths = [answer(simulator, f"q{i}")["usage"]["output_tokens"] for i in range(20)]
    assert all(70 <= n <= 150 for n in lengths)
    assert len(set(lengths)) > 1


def test_a_script_reply_is_returned_verbatim() -> None:
    rules = (
        ScriptRule(r"capital of (France|Italy)", reply="Paris, naturally."),
        ScriptRule(".", "x"),
    )
    doc = answer(Simulator(SimulatorConfig(scripts=rules)), "What is the capital of France?")
    assert text_of(doc) == "Paris, naturally."
    assert doc["usage"]["output_tokens"] == text_tokens("Paris, naturally.")


def test_the_first_matching_script_wins() -> None:
    rules = (ScriptRule("hello", reply="first"), ScriptRule("hello", reply="second"))
    assert text_of(answer(Simulator(SimulatorConfig(scripts=rules)), "hello there")) == "first"


def test_a_script_reply_is_still_cut_by_max_tokens() -> None:
    rules = (ScriptRule(".", reply="a" * 100),)
    doc = answer(Simulator(SimulatorConfig(scripts=rules)), "go", max_tokens=5)
    assert text_of(doc) == "a" * 20
    assert doc["stop_reason"] == "max_tokens"


def test_a_script_can_make_a_tool_call_with_a_given_input() -> None:
    rules = (ScriptRule("weather", tool_call={"name": "get_weather", "input": {"city": "Oslo"}}),)
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    doc = answer(Simulator(SimulatorConfig(scripts=rules)), "weather?", tools=[tool])
    assert doc["stop_reason"] == "tool_use"
    assert doc["content"][-1]["input"] == {"city": "Oslo"}
    assert doc["usage"]["output_tokens"] == text_tokens('{"city":"Oslo"}')


def test_a_script_tool_call_without_tools_answers_with_text() -> None:
    rules = (ScriptRule("weather", tool_call={"name": "get_weather"}),)
    doc = answer(Simulator(SimulatorConfig(scripts=rules)), "weather?")
    assert doc["stop_reason"] == "end_turn"
    assert text_of(doc)


def test_truncation_keeps_whole_characters_and_exact_token_counts() -> None:
    text = "héllo wörld ñ 漢字 " * 10
    for tokens in range(1, 30):
        cut = truncate_to_tokens(text, tokens)
        assert text.startswith(cut)
        assert text_tokens(cut) == tokens


def test_stream_pieces_rejoin_to_the_text() -> None:
    text = generate_text(random.Random(1), 200)
    pieces = list(stream_pieces(text))
    assert "".join(pieces) == text
    assert all(0 < text_tokens(p) <= 12 for p in pieces)


def test_a_plain_call_costs_well_under_a_millisecond_of_cpu() -> None:
    simulator = Simulator()
    body = orjson.dumps(
        {"model": "m", "max_tokens": 500, "messages": [{"role": "user", "content": "Hello there"}]}
    )

    async def run(calls: int) -> float:
        started = time.process_time()
        for _ in range(calls):
            response = await simulator.handle("POST", "/v1/messages", {}, body)
            await response.read()
        return (time.process_time() - started) / calls

    assert asyncio.run(run(500)) < 0.0005
