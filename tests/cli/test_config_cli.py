"""`tollhouse config` and `tollhouse flags`, end to end on the SQLite store a config file
names, through the main CLI's own parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollhouse.cli import main

CONFIG: dict[str, Any] = {
    "flags": {"support_model": "claude-haiku-4-5", "strict": False},
    "providers": {
        "sim": {"type": "simulator"},
        "anthropic": {"type": "anthropic", "api_key": "env:TEST_CLI_ANTHROPIC_KEY"},
    },
    "models": {"support": {"deployments": [{"provider": "sim", "model": "flag:support_model"}]}},
}


class Cli:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.config = self.write("gateway.yaml", CONFIG)

    def write(self, name: str, document: dict[str, Any]) -> Path:
        path = self.tmp_path / name
        store = {"keys": {"sqlite_path": str(self.tmp_path / "store.db")}}
        path.write_text(json.dumps({**document, **store}))  # JSON is YAML
        return path

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = self.capsys.readouterr()
        return status, out, err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("TEST_CLI_ANTHROPIC_KEY", "sk-test-never-shown")
    return Cli(tmp_path, capsys)


def test_apply_history_show_diff_and_rollback(cli: Cli) -> None:
    config = str(cli.config)
    assert cli("config", "apply", config, "--note", "first")[0] == 0
    changed = cli.write("changed.yaml", {**CONFIG, "timeouts": {"total": 30}})
    status, out, _ = cli("config", "apply", str(changed), "--note", "shorter total")
    assert status == 0
    assert out.startswith("version 2 stored")

    status, out, _ = cli("config", "history", "-c", config)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["VERSION", "CREATED", "SOURCE", "HASH", "NOTE"]
    assert [line.split()[0] for line in lines[1:]] == ["2", "1"]
    assert lines[1].endswith("shorter total")

    status, out, _ = cli("config", "diff", "1", "-c", config)
    assert status == 0
    assert "--- version 1\n+++ version 2\n" in out
    assert "+timeouts:\n+  total: 30\n" in out

    status, out, _ = cli("config", "rollback", "-c", config, "--note", "too short")
    assert (status, out.split()[:2]) == (0, ["version", "3"])
    status, out, _ = cli("config", "show", "3", "-c", config)
    assert status == 0
    assert "# note: too short" in out
    assert "timeouts" not in out
    assert "api_key: env:TEST_CLI_ANTHROPIC_KEY" in out
    assert "sk-test-never-shown" not in out

    status, out, _ = cli("config", "history", "--json", "-c", config)
    newest = json.loads(out.splitlines()[0])
    assert (newest["id"], newest["source"], newest["restores"]) == (3, "rollback", 1)


def test_applying_the_same_content_again_stores_nothing(cli: Cli) -> None:
    cli("config", "apply", str(cli.config))
    status, out, _ = cli("config", "apply", str(cli.config))
    assert (status, out) == (0, "unchanged: version 1 already has this content\n")


def test_a_config_the_loader_refuses_is_not_applied_and_says_why(cli: Cli) -> None:
    cli("config", "apply", str(cli.config))
    broken = cli.write("broken.yaml", {**CONFIG, "models": {"m": {"deployments": []}}})
    status, _, err = cli("config", "apply", str(broken))
    assert status == 1
    assert "$.models.m.deployments: at least one is required" in err
    assert cli("config", "history", "--json", "-c", str(cli.config))[1].count("\n") == 1


def test_flags_list_and_set(cli: Cli) -> None:
    config = str(cli.config)
    cli("config", "apply", config)
    status, out, _ = cli("flags", "set", "strict", "true", "--note", "lock down", "-c", config)
    assert status == 0
    assert out.startswith("strict set: version 2 stored")
    status, out, _ = cli("flags", "list", "--json", "-c", config)
    assert json.loads(out) == {
        "version": 2,
        "flags": {"support_model": "claude-haiku-4-5", "strict": True},
    }
    status, out, _ = cli("flags", "list", "-c", config)
    assert out.splitlines() == [
        "# flags of config version 2",
        'support_model  "claude-haiku-4-5"',
        "strict         true",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("flags", "set", "nope", "1"),
            "unknown flag 'nope'; defined flags: strict, support_model",
        ),
        (("flags", "set", "strict", "maybe"), "expected true or false, got 'maybe'"),
        (("config", "show", "9"), "no config version 9"),
        (("config", "rollback"), "no version before 1 has other content"),
    ],
)
def test_refusals_end_with_status_1_and_the_reason(
    cli: Cli, argv: tuple[str, ...], message: str
) -> None:
    cli("config", "apply", str(cli.config))
    status, out, err = cli(*argv, "-c", str(cli.config))
    assert (status, out) == (1, "")
    assert message in err
