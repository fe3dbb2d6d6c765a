"""Helpers shared by tests: the test gateway's config and a way to serve any config."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from tollhouse.config import parse_config
from tollhouse.gateway import Gateway
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

GATEWAY_KEY = "th-test-key"

# Quick retries, and a retry-after longer than half a second fails fast, so fault tests stay
# fast; breakers that never trip, so fault tests do not leak into one another. The
# reliability tests configure their own policies.
TEST_RELIABILITY: dict[str, Any] = {
    "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.05, "max_retry_after": 0.5},
    "breaker": {"consecutive_failures": 1000000, "min_calls": 1000000},
}

# Same format on both sides (claude → anthropic simulator, gpt → openai simulator) and, by
# asking the other family's model, cross format both ways.
IN_PROCESS_CONFIG: dict[str, Any] = {
    "providers": {
        "sim-anthropic": {"type": "simulator", "simulator": {"format": "anthropic"}},
        "sim-openai": {"type": "simulator", "simulator": {"format": "openai"}},
    },
    "models": {
        "claude-haiku-4-5": {
            "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5-20251001"}]
        },
        "claude-sonnet-4-5": {
            "deployments": [{"provider": "sim-anthropic", "model": "claude-sonnet-4-5"}]
        },
        "gpt-4o-mini": {"deployments": [{"provider": "sim-openai", "model": "gpt-4o-mini"}]},
    },
    "timeouts": {"first_byte": 5.0, "read_idle": 5.0},
    "reliability": TEST_RELIABILITY,
    # The routes above name real models whose retirement dates pass while these tests
    # live; relayed anyway, they keep working (tests/stages/test_lifecycle.py sets its own).
    "lifecycle": {"retired": "allow"},
}


def hermetic_gateway(config: dict[str, Any], **options: Any) -> Gateway:
    """The gateway of `config` (and `Gateway`'s keyword `options`); unless it says where its
    ledger, keys and conversations go, they are SQLite files in a directory of its own, so
    every test gateway records its calls as a real one does, and never into the working
    directory."""
    directory = tempfile.mkdtemp(prefix="tollhouse-test-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    defaults: dict[str, Any] = {
        "ledger": {
            "sqlite_path": f"{directory}/ledger.db",
            "spill_path": f"{directory}/ledger.spill",
        },
        "keys": {"sqlite_path": f"{directory}/keys.db"},
        "conversations": {"sqlite_path": f"{directory}/conversations.db"},
    }
    return Gateway(parse_config({**defaults, **config}), **options)


def serve_gateway(config: dict[str, Any], **options: Any) -> BackgroundServer:
    """Serve `config`'s `hermetic_gateway`."""
    return BackgroundServer(create_app(hermetic_gateway(config, **options))).start()


def server_unreachable(message: str) -> None:
    """A server a test needs is missing: skip locally, with the reason; fail under CI
    (CI=true), since a backend that went untested is not a pass."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


CHECKOUT = Path(__file__).resolve().parent.parent
NODE_MODULES = CHECKOUT / ".venv-node" / "node_modules"


def run_node_script(
    script: str, *args: str, packages: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    """Run `tests/node/<script>` with Node on the packages .ci/run installs into
    `.venv-node/` (missing `packages` or Node: `server_unreachable`); the JSON object the
    script prints last."""
    node = shutil.which("node")
    missing = [name for name in packages if not (NODE_MODULES / name).is_dir()]
    if node is None or missing:
        server_unreachable(f"node or {missing} in {NODE_MODULES} is missing (see .ci/run)")
    assert node is not None
    done = subprocess.run(
        [node, str(CHECKOUT / "tests" / "node" / script), *args],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = orjson.loads(done.stdout.splitlines()[-1])
    assert isinstance(result, dict)
    return result
