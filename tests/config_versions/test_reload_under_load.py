"""Changing the config of a running gateway through its admin API, under load from the
official SDKs: every call answers (0 errors) while versions are applied, a flag is set and
a version rolled back; a stream in flight finishes on the version it started with; a
rollback brings back the exact answers of the version it restores (seeded simulator)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from tests.serve_process import ServeProcess
from tests.support import GATEWAY_KEY, TEST_RELIABILITY

ADMIN_TOKEN = "test-admin-token-config"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
WORKERS = 6


def gateway_config(tmp_path: Path, seed: int = 1) -> dict[str, Any]:
    simulator = {"ttft_ms": 5, "tokens_per_second": 2000, "seed": seed}
    return {
        "flags": {"haiku": "claude-haiku-4-5-20251001", "sonnet_pace": 400},
        "providers": {
            "sim-anthropic": {"type": "simulator", "simulator": {**simulator}},
            "sim-slow": {
                "type": "simulator",
                "simulator": {"ttft_ms": 5, "tokens_per_second": 40, "reply_tokens": 60},
            },
            "sim-openai": {"type": "simulator", "simulator": {"format": "openai", **simulator}},
        },
        "models": {
            "claude-haiku-4-5": {
                "deployments": [{"provider": "sim-anthropic", "model": "flag:haiku"}]
            },
            "slow": {"deployments": [{"provider": "sim-slow", "model": "claude-haiku-4-5"}]},
            "gpt-4o-mini": {"deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]},
        },
        "reliability": TEST_RELIABILITY,
        "lifecycle": {"retired": "allow"},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db")},
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "config_store": {"poll_seconds": 0.5},
    }


def admin(gateway: ServeProcess, method: str, path: str, **body: Any) -> httpx.Response:
    return httpx.request(method, gateway.url + path, headers=ADMIN, json=body or None, timeout=60)


async def load(url: str, stop: threading.Event) -> tuple[Counter[int], list[str]]:
    """SDK calls, whole and streamed, in both formats, until `stop`: the versions that
    answered them, and every error."""
    versions: Counter[int] = Counter()
    errors: list[str] = []
    claude = anthropic.AsyncAnthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    gpt = openai.AsyncOpenAI(base_url=url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "tell me about config"}]

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if (n + i) % 4 == 0:
                    raw = await gpt.chat.completions.with_raw_response.create(
                        model="gpt-4o-mini", max_tokens=20, messages=messages
                    )
                    assert raw.parse().choices[0].message.content
                    header = raw.headers["x-tollhouse-config-version"]
                elif (n + i) % 4 == 1:
                    async with claude.messages.with_streaming_response.create(
                        model="claude-haiku-4-5", max_tokens=20, messages=messages, stream=True
                    ) as response:
                        header = response.headers["x-tollhouse-config-version"]
                        events = [line async for line in response.iter_lines()]
                        assert any("message_stop" in line for line in events)
                else:
                    answer = await claude.messages.with_raw_response.create(
                        model="claude-haiku-4-5", max_tokens=20, messages=messages
                    )
                    assert (await answer.parse()).content
                    header = answer.headers["x-tollhouse-config-version"]
                versions[int(header)] += 1
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    await claude.close()
    await gpt.close()
    return versions, errors


def wait_serving(gateway: ServeProcess, version: int) -> None:
    deadline = time.monotonic() + 20
    while httpx.get(gateway.url + "/readyz", timeout=5).json()["config_version"] != version:
        assert time.monotonic() < deadline, f"not serving version {version}"
        time.sleep(0.05)


def answer_text(url: str) -> str:
    client = anthropic.Anthropic(base_url=url, api_key=GATEWAY_KEY, max_retries=0)
    message = client.messages.create(
        model="claude-haiku-4-5", max_tokens=30, messages=[{"role": "user", "content": "same"}]
    )
    block = message.content[0]
    assert block.type == "text"
    return block.text


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    with ServeProcess(
        tmp_path, gateway_config(tmp_path), env={"TOLLHOUSE_ADMIN_TOKEN": ADMIN_TOKEN}
    ) as process:
        process.wait_ready()
        yield process


def test_changes_under_load_fail_no_call(gateway: ServeProcess, tmp_path: Path) -> None:
    stop = threading.Event()
    outcome: list[tuple[Counter[int], list[str]]] = []
    runner = threading.Thread(target=lambda: outcome.append(asyncio.run(load(gateway.url, stop))))
    runner.start()
    try:
        time.sleep(1.0)
        changed = admin(
            gateway, "POST", "/admin/config/versions",
            document=gateway_config(tmp_path, seed=2), note="new seed: provider rebuilt",
        )  # fmt: skip
        assert changed.status_code == 201, changed.text
        assert changed.json()["serving"] == 2
        time.sleep(1.0)
        flag = admin(gateway, "PUT", "/admin/config/flags/haiku", value="claude-haiku-4-5")
        assert flag.status_code == 201, flag.text
        assert flag.json()["serving"] == 3
        time.sleep(1.0)
        back = admin(gateway, "POST", "/admin/config/rollback", note="under load")
        assert back.status_code == 201, back.text
        assert back.json()["version"]["restores"] == 2
        assert back.json()["serving"] == 4
        time.sleep(1.0)
    finally:
        stop.set()
        runner.join(timeout=120)
    versions, errors = outcome[0]
    assert errors == []
    assert set(versions) == {1, 2, 3, 4}
    assert sum(versions.values()) >= 40


def test_a_stream_in_flight_finishes_on_the_version_it_started_with(
    gateway: ServeProcess, tmp_path: Path
) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
    document = gateway_config(tmp_path)
    document["models"]["slow"] = {
        "deployments": [{"provider": "sim-anthropic", "model": "claude-sonnet-4-5"}]
    }
    with client.messages.with_streaming_response.create(
        model="slow", max_tokens=60, messages=[{"role": "user", "content": "hi"}], stream=True
    ) as response:
        assert response.headers["x-tollhouse-config-version"] == "1"
        lines = response.iter_lines()
        first = [next(lines) for _ in range(4)]
        changed = admin(gateway, "POST", "/admin/config/versions", document=document)
        assert changed.json()["serving"] == 2
        rest = list(lines)
    stream = "\n".join(first + rest)
    assert '"model":"claude-haiku-4-5"' in stream.replace(" ", "")  # version 1's deployment
    assert "message_stop" in stream
    after = client.messages.create(
        model="slow", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert after.model == "claude-sonnet-4-5"


def test_a_rollback_brings_back_the_answers_of_the_version_it_restores(
    gateway: ServeProcess, tmp_path: Path
) -> None:
    before = answer_text(gateway.url)
    admin(gateway, "POST", "/admin/config/versions", document=gateway_config(tmp_path, seed=7))
    changed = answer_text(gateway.url)
    back = admin(gateway, "POST", "/admin/config/rollback", to=1)
    assert back.json()["serving"] == 3
    assert changed != before
    assert answer_text(gateway.url) == before
