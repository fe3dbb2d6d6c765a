"""Chaos: 2,000 calls, streaming and not, from both SDKs, while about 30% of the primary
upstream's attempts fail with a mix of 429 (with retry-after), 500, 529, resets, hangs and
failures inside streams before their first content; a healthy fallback in the other wire
format is configured. At least 99.9% of calls must be answered correctly, every failure
must be a well-formed error, and the run must end in bounded time.

Failures inside a stream after its content has started cannot be hidden by design (they
become error events, see test_timeouts_and_streams.py); the mix here strikes streams before
their first content, as upstream overload errors do.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import anthropic
import openai
from tests.reliability.conftest import simulator
from tests.support import GATEWAY_KEY, hermetic_gateway

from tollhouse.providers.simulator import SimulatorProvider
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

CALLS = 2000
CONCURRENCY = 64
WALL_TIME_LIMIT = 90.0
# Probabilities per attempt, drawn in order from the simulator's seeded RNG; together about
# 1 - (0.94 × 0.92 × 0.92 × 0.96 × 0.97 × 0.97 × 0.98) ≈ 30% of attempts fail.
FAULT_MIX = [
    {"fault": "429:0.05", "probability": 0.06},
    {"fault": "500", "probability": 0.08},
    {"fault": "529", "probability": 0.08},
    {"fault": "reset", "probability": 0.04},
    {"fault": "hang", "probability": 0.03},
    {"fault": "mid-stream-error:1", "probability": 0.03},
    {"fault": "mid-stream-reset:2", "probability": 0.02},
]


def chaos_config() -> dict[str, Any]:
    return {
        "reliability": {
            "retry": {"max_attempts": 3, "base_delay": 0.02, "max_delay": 0.2},
            "max_in_flight": 4096,
        },
        "timeouts": {"first_byte": 0.25, "read_idle": 2.0, "total": 20.0},
        "providers": {
            "primary": simulator("anthropic", *FAULT_MIX, seed=7),
            "fallback": simulator("openai"),
        },
        "models": {
            "m": {
                "deployments": [
                    {"provider": "primary", "model": "claude-primary"},
                    {"provider": "fallback", "model": "gpt-fallback"},
                ]
            }
        },
    }


def test_chaos_calls_are_answered_or_fail_cleanly() -> None:
    gateway = hermetic_gateway(chaos_config())
    server = BackgroundServer(create_app(gateway)).start()
    url = server.url
    claude = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0, timeout=30)
    gpt = openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=30)
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes: Counter[str] = Counter()
    malformed: list[str] = []

    async def anthropic_call(i: int, stream: bool) -> bool:
        messages = [{"role": "user", "content": f"question {i}"}]
        if stream:
            async with claude.messages.stream(model="m", max_tokens=400, messages=messages) as s:  # type: ignore[arg-type]
                text = "".join([t async for t in s.text_stream])
                final = await s.get_final_message()
            return bool(text) and final.stop_reason == "end_turn"
        message = await claude.messages.create(model="m", max_tokens=400, messages=messages)  # type: ignore[arg-type]
        return message.content[0].type == "text" and message.stop_reason == "end_turn"

    async def openai_call(i: int, stream: bool) -> bool:
        messages = [{"role": "user", "content": f"question {i}"}]
        if stream:
            chunks = [
                c
                async for c in await gpt.chat.completions.create(
                    model="m",
                    messages=messages,
                    stream=True,  # type: ignore[arg-type]
                )
            ]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
            return bool(text) and finish == "stop"
        completion = await gpt.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        return bool(completion.choices[0].message.content)

    async def one(i: int) -> None:
        stream = i % 2 == 0
        call = anthropic_call if i % 4 < 2 else openai_call
        async with limit:
            try:
                ok = await call(i, stream)
                outcomes["answered" if ok else "wrong answer"] += 1
            except (anthropic.APIStatusError, openai.APIError) as exc:
                body = getattr(exc, "body", None)
                if not isinstance(body, dict) or not (body.get("error") or body.get("message")):
                    malformed.append(repr(exc))
                outcomes[f"error {type(exc).__name__}"] += 1
            except (anthropic.APIConnectionError, openai.APIConnectionError) as exc:
                malformed.append(repr(exc))
                outcomes["connection error"] += 1

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(CALLS)))

    started = time.monotonic()
    try:
        asyncio.run(run())
    finally:
        server.stop()
    wall = time.monotonic() - started
    primary = gateway.providers["primary"]
    assert isinstance(primary, SimulatorProvider)
    attempts = primary.simulator.generation_calls
    injected = sum(primary.simulator.faults_fired.values())
    summary = {
        "calls": CALLS,
        "wall_seconds": round(wall, 1),
        "primary_attempts": attempts,
        "faults_injected": injected,
        "fault_rate": round(injected / attempts, 3),
        **outcomes,
    }
    print("chaos:", json.dumps(summary))
    assert 0.25 <= injected / attempts <= 0.35, summary
    assert sum(outcomes.values()) == CALLS
    assert outcomes["answered"] >= CALLS * 0.999, summary
    assert not malformed, malformed[:5]
    assert wall < WALL_TIME_LIMIT, summary
