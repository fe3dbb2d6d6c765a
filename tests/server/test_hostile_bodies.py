"""No request may freeze the gateway: a real `tollhouse serve` on its default limits keeps
answering other calls while it processes the largest request those limits admit, and refuses
larger ones before the work they would cost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tollhouse.config.model import LimitsConfig
from tollhouse.server.runner import free_port

DEFAULTS = LimitsConfig()

# The simulator as upstream in the gateway's own process, both formats; no limit of ours.
CONFIG: dict[str, Any] = {
    "providers": {
        "sim-anthropic": {"type": "simulator", "simulator": {"format": "anthropic"}},
        "sim-openai": {"type": "simulator", "simulator": {"format": "openai"}},
    },
    "models": {
        "claude-haiku-4-5": {
            "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5-20251001"}]
        },
        "gpt-4o-mini": {"deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]},
    },
}

# Generous for a loaded machine: a frozen loop (the quadratic merge took seconds on this
# request) is far beyond it, a loop that keeps turning far below.
PROBE_LIMIT_SECONDS = 0.5


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("hostile-bodies")
    config = {
        **CONFIG,
        "ledger": {
            "sqlite_path": str(directory / "ledger.db"),
            "spill_path": str(directory / "ledger.spill"),
        },
        "keys": {"sqlite_path": str(directory / "keys.db")},
    }
    config_path = directory / "gateway.yaml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = directory / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tollhouse", "serve", "-c", str(config_path), "-p", str(port)],
            cwd=directory,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gateway exited: {log.read_text()}")
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("gateway did not become ready within 30 s")


def _maximal_body(model: str) -> bytes:
    """The largest request of one role the default limits admit: `max_messages` user
    messages, each a list of text parts, as many containers as allowed."""
    per_message = (DEFAULTS.max_json_containers - 2) // DEFAULTS.max_messages  # msg + list
    parts = [{"type": "text", "text": "hi there"}] * (per_message - 2)
    messages = [{"role": "user", "content": parts}] * DEFAULTS.max_messages
    body = json.dumps({"model": model, "max_tokens": 10, "messages": messages}).encode()
    assert body.count(b"{") + body.count(b"[") <= DEFAULTS.max_json_containers
    return body


def _probe_while(url: str, path: str, body: bytes) -> tuple[httpx.Response, list[float]]:
    """POST `body` and, until it is answered, time `/healthz` probes back to back."""
    answer: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answer.append(
            httpx.post(
                url + path,
                content=body,
                headers={"content-type": "application/json"},
                timeout=120,
            )
        )
    )
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as probe:
        probe.get("/healthz")  # the connection is open before the request starts
        sender.start()
        while sender.is_alive():
            started = time.perf_counter()
            assert probe.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.002)
    sender.join()
    return answer[0], latencies


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("claude-haiku-4-5", "/v1/chat/completions"),  # OpenAI client, Anthropic upstream
        ("gpt-4o-mini", "/v1/messages"),  # Anthropic client, OpenAI upstream
        ("gpt-4o-mini", "/v1/chat/completions"),
    ],
)
def test_probe_stays_fast_while_a_maximal_request_is_processed(
    gateway_url: str, model: str, path: str
) -> None:
    response, latencies = _probe_while(gateway_url, path, _maximal_body(model))
    assert response.status_code == 200, response.text[:300]
    assert latencies, "the maximal request was answered before any probe"
    assert max(latencies) < PROBE_LIMIT_SECONDS, sorted(latencies)[-5:]


def test_one_message_over_the_default_limit_is_refused_with_the_setting_named(
    gateway_url: str,
) -> None:
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="k", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}] * (DEFAULTS.max_messages + 1)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="claude-haiku-4-5", messages=messages)
    assert f"the limit is {DEFAULTS.max_messages} (limits.max_messages)" in str(refused.value)


def test_a_body_of_millions_of_tiny_containers_is_refused_413_before_it_is_parsed(
    gateway_url: str,
) -> None:
    # 31 MB of empty arrays: within the body size limit, seconds of parsing.
    body = b'{"model":"gpt-4o-mini","messages":[' + b"[]," * 10_000_000 + b"[]]}"
    response, latencies = _probe_while(gateway_url, "/v1/chat/completions", body)
    assert response.status_code == 413
    assert "limits.max_json_containers" in response.json()["error"]["message"]
    assert max(latencies, default=0.0) < PROBE_LIMIT_SECONDS


def _nested_schema(levels: int) -> dict[str, Any]:
    """A JSON schema of `levels` nested object properties: two JSON objects per level."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def _call_with_tool_schema(gateway_url: str, levels: int) -> Any:
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key="k", max_retries=0)
    tool: Any = {
        "type": "function",
        "function": {"name": "f", "parameters": _nested_schema(levels)},
    }
    return client.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}], tools=[tool]
    )


def test_a_tool_schema_nested_past_the_depth_limit_is_a_400_naming_it(gateway_url: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _call_with_tool_schema(gateway_url, DEFAULTS.max_json_depth // 2)
    assert "limits.max_json_depth" in str(refused.value)


def test_a_tool_schema_nested_past_what_the_gateway_can_encode_is_a_400(gateway_url: str) -> None:
    # 300 objects deep: translated to Anthropic, the encoder refused it, a 500 halfway
    # through the call.
    with pytest.raises(openai.BadRequestError):
        _call_with_tool_schema(gateway_url, 150)


def test_a_tool_schema_within_the_depth_limit_is_served(gateway_url: str) -> None:
    completion = _call_with_tool_schema(gateway_url, 20)
    assert completion.choices[0].finish_reason in ("stop", "tool_calls", "length")
