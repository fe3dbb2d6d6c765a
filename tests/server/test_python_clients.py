"""Python client libraries nobody here wrote — LangChain (langchain-openai, with and
without the Responses API, and langchain-anthropic), LiteLLM as a client, simonw's `llm`
and instructor — against the gateway, each run in its own virtualenv (tests/clients/
python_clients.py): plain, streamed, a tool call, structured output by the library's own
helper, and an error, on a model passed through to an upstream that speaks the Responses
API, one translated to Chat Completions and one translated to Anthropic Messages. The
virtualenv is made by .ci/run (`.venv-clients`, from tests/clients/requirements.txt)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.server.test_responses_api import PASSTHROUGH, TO_CHAT, TO_MESSAGES
from tests.support import server_unreachable

CHECKOUT = Path(__file__).resolve().parents[2]
PYTHON = CHECKOUT / ".venv-clients" / "bin" / "python"
SCRIPT = CHECKOUT / "tests" / "clients" / "python_clients.py"


MODELS = (PASSTHROUGH, TO_CHAT, TO_MESSAGES)


@pytest.fixture(scope="module")
def results(http_gateway_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every check on every model, from one run of the script (importing the libraries
    is the slow part)."""
    if not PYTHON.exists():
        server_unreachable(f"the client libraries' virtualenv {PYTHON} is missing (see .ci/run)")
    home = tmp_path_factory.mktemp("clients")
    done = subprocess.run(
        [str(PYTHON), str(SCRIPT), http_gateway_url, *MODELS],
        # Each library's caches and settings go under the test's own directory.
        env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")},
        cwd=home,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    found = orjson.loads(done.stdout.splitlines()[-1])
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("model", MODELS)
def test_the_python_client_libraries_default_paths_work(
    results: dict[str, Any], model: str
) -> None:
    checks = results[model]
    failed = {name: r["detail"] for name, r in checks.items() if not r["ok"]}
    assert not failed, failed
    assert len(checks) == 9
