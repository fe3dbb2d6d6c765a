"""The OpenAI TypeScript SDK and the Vercel AI SDK (`ai` with `@ai-sdk/openai` and
`@ai-sdk/anthropic`) against the gateway, run by Node from pytest (tests/node/
openai_clients.cjs): each client's default code paths — the AI SDK's `openai(model)` and
the SDK's `responses` use the Responses API — plain, streamed, a function-call loop,
structured output through each client's own helper, and an error, on a model passed
through to an upstream that speaks the Responses API, one translated to Chat Completions
and one translated to Anthropic Messages. The packages are installed by .ci/run into
`.venv-node/` from tests/node/package-lock.json."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.test_responses_api import PASSTHROUGH, TO_CHAT, TO_MESSAGES
from tests.support import run_node_script

PACKAGES = ("openai", "ai", "@ai-sdk/openai", "@ai-sdk/anthropic", "zod")


def run_checks(url: str, model: str) -> dict[str, Any]:
    return run_node_script("openai_clients.cjs", url, model, packages=PACKAGES, timeout=180)


@pytest.mark.parametrize("model", [PASSTHROUGH, TO_CHAT, TO_MESSAGES])
def test_the_typescript_clients_default_paths_work(http_gateway_url: str, model: str) -> None:
    results = run_checks(http_gateway_url, model)
    failed = {name: r["detail"] for name, r in results.items() if not r["ok"]}
    assert not failed, failed
    assert len(results) == 14
