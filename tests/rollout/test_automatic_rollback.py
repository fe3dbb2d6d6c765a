"""A canary made faulty (the simulator failing 30 % of its calls) is set back to 0 % by the
guardrails within their window, as a new config version saying why, with an alert, while
the control serves every call without an error. A real `tollhouse serve -c` process,
through the official SDK."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from tests.serve_process import ServeProcess
from tests.support import GATEWAY_KEY, TEST_RELIABILITY

from tollhouse.ports.config.sqlite import SQLiteConfigStore

WINDOW = 60.0
HI = [{"role": "user", "content": "hi"}]


def faulty_canary_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "providers": {
            "sim": {"type": "simulator", "simulator": {"format": "anthropic"}},
            "sim-faulty": {
                "type": "simulator",
                "simulator": {
                    "format": "anthropic",
                    "seed": 7,
                    "faults": [{"fault": "500", "probability": 0.3}],
                },
            },
        },
        "models": {
            "support": {
                "deployments": [{"provider": "sim", "model": "claude-haiku-4-5"}],
                "variants": {
                    "control": {"weight": 50},
                    "canary": {
                        "weight": 50,
                        "deployments": [{"provider": "sim-faulty", "model": "claude-haiku-4-5"}],
                        "retry": {"max_attempts": 1},
                    },
                },
                "guardrails": {
                    "window_seconds": WINDOW,
                    "min_calls": 30,
                    "check_interval_seconds": 0.5,
                },
            }
        },
        "reliability": TEST_RELIABILITY,
        "lifecycle": {"retired": "allow"},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db")},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "config_store": {"poll_seconds": 0.5},
    }


async def drive(url: str, seconds: float) -> tuple[list[tuple[float, str, int]], float | None]:
    """Calls from many users until the canary has served none for 2 s (or `seconds`):
    (when, variant, status) per call, and when the last canary call was."""
    client = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    seen: list[tuple[float, str, int]] = []
    started = time.monotonic()
    last_canary: float | None = None

    async def one(user: int) -> None:
        nonlocal last_canary
        try:
            raw = await client.messages.with_raw_response.create(
                model="support", max_tokens=5, messages=HI, metadata={"user_id": f"u{user}"}
            )
            headers, status = raw.headers, raw.http_response.status_code
        except anthropic.APIStatusError as error:
            headers, status = error.response.headers, error.status_code
        now = time.monotonic() - started
        variant = headers.get("x-tollhouse-variant", "-")
        seen.append((now, variant, status))
        if variant == "canary":
            last_canary = now

    user = 0
    try:
        while time.monotonic() - started < seconds:
            await asyncio.gather(*(one(user + i) for i in range(8)))
            user += 8
            now = time.monotonic() - started
            if last_canary is not None and now - last_canary > 2.0 and now > 5.0:
                break
    finally:
        await client.close()
    return seen, last_canary


@pytest.mark.timeout(300)
def test_a_canary_failing_30_percent_is_rolled_back_within_its_window(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, faulty_canary_config(tmp_path)).wait_ready(60) as gateway:
        seen, last_canary = asyncio.run(drive(gateway.url, WINDOW * 2))
        metrics = httpx.get(gateway.url + "/metrics", timeout=10).text

    control = [status for _, variant, status in seen if variant == "control"]
    canary = [status for _, variant, status in seen if variant == "canary"]
    assert control, "the control served calls"
    assert set(control) == {200}, "the control kept serving without an error"
    assert any(status >= 500 for status in canary), "the canary was faulty"
    assert last_canary is not None
    assert last_canary < WINDOW, f"rolled back after {last_canary:.1f} s"
    after = [variant for when, variant, _ in seen if when > last_canary + 1.0]
    assert after, "calls went on after the rollback"
    assert set(after) == {"control"}

    async def newest() -> Any:
        store = SQLiteConfigStore(tmp_path / "keys.db")
        try:
            return await store.latest()
        finally:
            await store.aclose()

    version = asyncio.run(newest())
    variants = version.document["models"]["support"]["variants"]
    assert (variants["control"]["weight"], variants["canary"]["weight"]) == (100, 0)
    assert version.source == "auto"
    assert version.note.startswith(
        "guardrail rollback: support/canary from 50 % to 0 %: error_rate"
    )
    assert 'tollhouse_alerts_total{kind="canary_rollback"} 1.0' in metrics
    assert (
        'tollhouse_guardrail_rollbacks_total{guardrail="error_rate",route="support",'
        'variant="canary"} 1.0'
    ) in metrics
