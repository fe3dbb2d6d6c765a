"""`tollhouse check-config` refuses exactly what `tollhouse serve` refuses: the same loader
and the same builders (gateway_parts.py), with errors that name the key and say what is
expected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tollhouse.cli import main
from tollhouse.server.runner import free_port

UNSET = "env:TOLLHOUSE_TEST_NEVER_SET"

SIMULATOR = {"sim": {"type": "simulator", "simulator": {"format": "anthropic"}}}
MODEL = {"m": {"deployments": [{"provider": "sim", "model": "claude-haiku-4-5"}]}}


def with_route(**route: Any) -> dict[str, Any]:
    return {"providers": SIMULATOR, "models": {"m": {**MODEL["m"], **route}}}


# config → a fragment of the one-line error, naming the key.
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "max_attempts 0": (
        {"reliability": {"retry": {"max_attempts": 0}}},
        "Expected `int` >= 1 - at `$.reliability.retry.max_attempts`",
    ),
    "negative retry delay": (
        {"reliability": {"retry": {"base_delay": -1}}},
        "`$.reliability.retry.base_delay`",
    ),
    "zero total timeout": ({"timeouts": {"total": 0}}, "> 0.0 - at `$.timeouts.total`"),
    "negative first byte timeout": (
        {"timeouts": {"first_byte": -5}},
        "`$.timeouts.first_byte`",
    ),
    "route timeout zero": (
        with_route(timeouts={"read_idle": 0}),
        "`$.models.m.timeouts.read_idle`",
    ),
    "negative hedge delay": (with_route(hedge_after_ms=-10), "`$.models.m.hedge_after_ms`"),
    "negative budget": (
        {"spend": {"team_budgets": {"t": {"daily_usd": "-1"}}}},
        "daily_usd must be a finite amount >= 0",
    ),
    "negative unpriced estimate": (
        {"spend": {"unpriced_estimate_usd": "-0.01"}},
        "unpriced_estimate_usd must be a finite amount >= 0",
    ),
    "zero truncation cap": (
        with_route(truncation={"max_tokens_cap": 0}),
        "`$.models.m.truncation.max_tokens_cap`",
    ),
    "negative degrade retry-after": (
        with_route(degrade={"retry_after_seconds": -1}),
        "`$.models.m.degrade.retry_after_seconds`",
    ),
    "breaker error rate above 1": (
        {"reliability": {"breaker": {"error_rate": 1.5}}},
        "`$.reliability.breaker.error_rate`",
    ),
    "zero in-flight limit": (
        {"reliability": {"max_in_flight": 0}},
        "`$.reliability.max_in_flight`",
    ),
    "zero counter timeout": (
        {"counters": {"timeout_seconds": 0}},
        "`$.counters.timeout_seconds`",
    ),
    "unresolvable provider key": (
        {
            "providers": {"a": {"type": "anthropic", "api_key": UNSET}},
            "models": {"m": {"deployments": [{"provider": "a", "model": "x"}]}},
        },
        "$.providers.a.api_key: environment variable TOLLHOUSE_TEST_NEVER_SET is not set",
    ),
    "unknown simulator option": (
        {"providers": {"sim": {"type": "simulator", "simulator": {"tttf_ms": 5}}}},
        "$.providers.sim.simulator:",
    ),
    "bad simulator fault": (
        {"providers": {"sim": {"type": "simulator", "simulator": {"faults": ["nonsense"]}}}},
        "$.providers.sim.simulator:",
    ),
    "webhook that is no http URL": (
        {"alerts": {"webhooks": [{"url": "ftp://alerts.example"}]}},
        "alerts.webhooks[0].url: expected an http(s) URL",
    ),
    "unresolvable webhook URL": (
        {"alerts": {"webhooks": [{"url": UNSET}]}},
        "alerts.webhooks[0].url: environment variable TOLLHOUSE_TEST_NEVER_SET is not set",
    ),
    "Redis URL that is no Redis URL": (
        {"counters": {"backend": "redis", "redis_url": "http://127.0.0.1:6379"}},
        "$.counters.redis_url: expected redis://",
    ),
    "unresolvable Redis URL": (
        {"counters": {"backend": "redis", "redis_url": UNSET}},
        "$.counters.redis_url: environment variable TOLLHOUSE_TEST_NEVER_SET is not set",
    ),
    "unresolvable ledger connection string": (
        {"ledger": {"backend": "postgres", "postgres": UNSET}},
        "$.ledger.postgres: environment variable TOLLHOUSE_TEST_NEVER_SET is not set",
    ),
    "unresolvable keys connection string": (
        {"keys": {"backend": "postgres", "postgres": UNSET}},
        "$.keys.postgres: environment variable TOLLHOUSE_TEST_NEVER_SET is not set",
    ),
}


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    own = {
        "ledger": {
            "sqlite_path": str(tmp_path / "ledger.db"),
            "spill_path": str(tmp_path / "ledger.spill"),
            **config.get("ledger", {}),
        }
    }
    path.write_text(json.dumps({**config, **own}))  # JSON is YAML
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def run_serve(path: Path) -> tuple[int, str]:
    """`tollhouse serve` on `path` as a process: its exit status and stderr; a gateway that
    starts (the config was accepted) is stopped and reported as status 0."""
    port = str(free_port())
    command = [sys.executable, "-m", "tollhouse", "serve", "-c", str(path), "-p", port]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=path.parent)
    try:
        _, stderr = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        return 0, stderr
    return process.returncode, stderr


@pytest.mark.parametrize(("config", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_check_config_refuses_what_serve_refuses_with_the_same_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict[str, Any], fragment: str
) -> None:
    path = write_config(tmp_path, config)
    checked, check_error = run_cli(["check-config", str(path)], capsys)
    served, serve_error = run_serve(path)
    assert (checked, served) == (2, 2)
    assert fragment in check_error
    assert check_error.strip().splitlines()[-1] in serve_error
    assert "Traceback" not in check_error + serve_error
    assert not (tmp_path / "ledger.spill").exists()


def test_check_config_accepts_a_config_serve_runs_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOLLHOUSE_TEST_WEBHOOK", "https://hooks.example/T0/B0/secret")
    config = {
        "providers": SIMULATOR,
        "models": MODEL,
        "alerts": {"webhooks": [{"url": "env:TOLLHOUSE_TEST_WEBHOOK"}]},
        "counters": {"backend": "redis", "redis_url": "redis://127.0.0.1:6379/0"},
    }
    path = write_config(tmp_path, config)
    assert run_cli(["check-config", str(path)], capsys) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.yaml"]


def test_check_config_as_a_process_names_the_key_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, REFUSED["unresolvable provider key"][0])
    result = subprocess.run(
        [sys.executable, "-m", "tollhouse", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tollhouse: config error: $.providers.a.api_key: environment variable "
        "TOLLHOUSE_TEST_NEVER_SET is not set or empty"
    ]
