"""The OpenAI TypeScript SDK and the Vercel AI SDK (`ai` with `@ai-sdk/openai` and
`@ai-sdk/anthropic`) against the gateway, run by Node from pytest (tests/node/
openai_clients.cjs): each client's default code paths — the AI SDK's `openai(model)` and
the SDK's `responses` use the Responses API — plain, streamed, a function-call loop,
structured output through each client's own helper, and an error, on a model passed
through to an upstream that speaks the Responses API, one translated to Chat Completions
and one translated to Anthropic Messages. The packages are installed by .ci/run into
`.venv-node/` from tests/node/package-lock.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.server.test_responses_api import PASSTHROUGH, TO_CHAT, TO_MESSAGES
from tests.support import server_unreachable

CHECKOUT = Path(__file__).resolve().parents[2]
MODULES = CHECKOUT / ".venv-node" / "node_modules"
SCRIPT = CHECKOUT / "tests" / "node" / "openai_clients.cjs"
PACKAGES = ("openai", "ai", "@ai-sdk/openai", "@ai-sdk/anthropic", "zod")


def run_checks(url: str, model: str) -> dict[str, Any]:
    node = shutil.which("node")
    missing = [name for name in PACKAGES if not (MODULES / name).is_dir()]
    if node is None or missing:
        server_unreachable(f"node or {missing} in {MODULES} is missing (see .ci/run)")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT), url, model],
        env={**os.environ, "NODE_PATH": str(MODULES)},
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    results = orjson.loads(done.stdout.splitlines()[-1])
    assert isinstance(results, dict)
    return results


@pytest.mark.parametrize("model", [PASSTHROUGH, TO_CHAT, TO_MESSAGES])
def test_the_typescript_clients_default_paths_work(http_gateway_url: str, model: str) -> None:
    results = run_checks(http_gateway_url, model)
    failed = {name: r["detail"] for name, r in results.items() if not r["ok"]}
    assert not failed, failed
    assert len(results) == 14
