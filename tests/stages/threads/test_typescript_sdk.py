"""The TypeScript SDK's message threads against the gateway, run by Node from pytest:
`thread().send()` twice (history checked by input tokens) and a tool runner of three turns,
same format and cross format. The SDK is installed by .ci/run into `.venv-node/` (from
tests/node/package-lock.json: `mkdir -p .venv-node && cp tests/node/package*.json
.venv-node/ && npm ci --prefix .venv-node`)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from tests.reliability.conftest import simulator
from tests.stages.threads.test_anthropic_threads import QUESTION, SCRIPTS, unthreaded_input_tokens
from tests.support import GATEWAY_KEY, IN_PROCESS_CONFIG, run_node_script, serve_gateway


def run_node(*args: str) -> dict[str, Any]:
    return run_node_script("threads.cjs", *args, packages=("@anthropic-ai/sdk",))


@pytest.mark.parametrize("fmt", ["anthropic", "openai"])
def test_the_typescript_sdks_threads_and_tool_runner_keep_their_history(fmt: str) -> None:
    config = {
        **IN_PROCESS_CONFIG,
        "providers": {"upstream": simulator(fmt, scripts=SCRIPTS)},
        "models": {"m": {"deployments": [{"provider": "upstream", "model": "claude-haiku-4-5"}]}},
    }
    server = serve_gateway(config)
    try:
        result = run_node(server.url, "m", QUESTION)
        client = anthropic.Anthropic(base_url=server.url, api_key=GATEWAY_KEY, max_retries=0)
        first = result["thread"]["first"]
        whole = unthreaded_input_tokens(
            client,
            model="m",
            max_tokens=200,
            messages=[
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first["content"]},
                {"role": "user", "content": "And then?"},
            ],
        )
    finally:
        server.stop()
    thread = result["thread"]
    assert thread["requests"] == [
        {"thread": {"type": "create"}, "messages": 1},
        {"thread": {"type": "continue", "previous_message_id": first["id"]}, "messages": 1},
    ]
    assert thread["second"]["input_tokens"] == whole
    runner = result["runner"]
    assert runner["stop_reasons"] == ["tool_use", "tool_use", "end_turn"]
    assert runner["last_text"] == "Two readings taken; done."
    assert [r["thread"]["type"] for r in runner["requests"]] == ["create", "continue", "continue"]
    assert [(r["messages"], r["tools"]) for r in runner["requests"][1:]] == [(1, False)] * 2
