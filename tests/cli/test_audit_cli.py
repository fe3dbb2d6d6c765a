"""`tollhouse audit` over a ledger filled by real calls through both SDKs, with catalog
overrides dated relative to today: every route's model and every model used, its state,
days left and replacement, calls and spend by key and team; exit 1 when one in use retires
within --within, 0 otherwise, 2 when it cannot run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.stages.test_keys_limits_budgets import HI, claude, create_key, gpt
from tests.stages.test_lifecycle import dated, entry
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.cli import main

CATALOG = {
    "models": [
        entry(
            "soon-claude",
            "anthropic",
            state="deprecated",
            retires_on=dated(20),
            replacement="next-claude",
        ),
        entry("next-claude", "anthropic"),
        entry("later-gpt", "openai", state="deprecated", retires_on=dated(120)),
        entry("gone-gpt", "openai", state="retired", retires_on=dated(-3)),
    ]
}
MODELS = {
    "soon": {"deployments": [{"provider": "sim-anthropic", "model": "soon-claude"}]},
    "later": {
        "deployments": [
            {"provider": "sim-openai", "model": "later-gpt"},
            {"provider": "sim-anthropic", "model": "next-claude"},
        ]
    },
    "gone": {"deployments": [{"provider": "sim-openai", "model": "gone-gpt"}]},
}


@pytest.fixture
def config_file(tmp_path: Path) -> tuple[Path, str]:
    """A config whose ledger holds: 2 calls on `soon` by key A (team search), 1 on `later`
    by key B (team ads), 1 refused call to `gone` by key B."""
    config: dict[str, Any] = {
        **IN_PROCESS_CONFIG,
        "models": MODELS,
        "catalog": CATALOG,
        "lifecycle": {"retired": "refuse"},
        "keys": {"required": True, "sqlite_path": str(tmp_path / "keys.db")},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        "alerts": {"model_retirement": {"enabled": False}},
    }
    key_a, secret_a = create_key(tmp_path / "keys.db", team="search")
    _, secret_b = create_key(tmp_path / "keys.db", team="ads")
    server = serve_gateway(config)
    try:
        for _ in range(2):
            claude(server.url, secret_a).messages.create(model="soon", max_tokens=5, messages=HI)
        gpt(server.url, secret_b).chat.completions.create(model="later", messages=HI)
        with pytest.raises(Exception, match="retired"):
            gpt(server.url, secret_b).chat.completions.create(model="gone", messages=HI)
    finally:
        server.stop()
    path = tmp_path / "tollhouse.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, key_a


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_audit_lists_every_route_model_with_state_days_left_and_spend_by_key_and_team(
    config_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = audit(capsys, "--config", str(config_file[0]), "--format", "json")
    models = {doc["model"]: doc for doc in json.loads(out)["models"]}
    assert code == 1
    assert set(models) == {"soon-claude", "next-claude", "later-gpt", "gone-gpt"}
    soon = models["soon-claude"]
    assert (soon["state"], soon["days_left"], soon["replacement"]) == (
        "deprecated",
        20,
        "next-claude",
    )
    assert soon["retires_on"] == dated(20)
    assert soon["routes"] == ["soon"]
    assert soon["calls"] == 2
    assert [(r["key_id"], r["team"], r["calls"]) for r in soon["by_key_team"]] == [
        (config_file[1], "search", 2)
    ]
    assert soon["cost_usd"] != "0"
    assert models["later-gpt"]["by_key_team"][0]["team"] == "ads"
    assert models["next-claude"]["routes"] == ["later"]  # a fallback deployment counts
    assert models["next-claude"]["calls"] == 0
    # The refused call counts for the retired model its route names.
    assert (models["gone-gpt"]["state"], models["gone-gpt"]["calls"]) == ("retired", 1)
    assert "soon-claude is in use and retires in 20 days (replacement: next-claude)" in err
    assert "gone-gpt is in use and retired" in err
    assert "later-gpt" not in err


def test_audit_passes_when_nothing_in_use_retires_within_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        **IN_PROCESS_CONFIG,
        "models": {"later": MODELS["later"]},
        "catalog": CATALOG,
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db")},
    }
    path = tmp_path / "tollhouse.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = audit(capsys, "--config", str(path), "--no-ledger", "--within", "60")
    assert code == 0
    assert err == ""
    assert "later-gpt" in out
    assert " 120 " in out
    code, _, err = audit(capsys, "--config", str(path), "--no-ledger", "--within", "120")
    assert code == 1
    assert "later-gpt is in use and retires in 120 days" in err


def test_audit_as_csv_has_one_row_per_model_key_and_team(
    config_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = audit(capsys, "--config", str(config_file[0]), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1
    soon = [row for row in rows if row["model"] == "soon-claude"]
    assert [(row["team"], row["key_team_calls"], row["days_left"]) for row in soon] == [
        ("search", "2", "20")
    ]
    assert {row["model"] for row in rows} == {"soon-claude", "next-claude", "later-gpt", "gone-gpt"}


def test_audit_as_a_table_names_each_model_and_its_key_team_lines(
    config_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = audit(capsys, "--config", str(config_file[0]), "--since", "1d")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].split()[:4] == ["model", "state", "retires_on", "days_left"]
    soon = next(i for i, line in enumerate(lines) if line.startswith("soon-claude"))
    assert lines[soon].split()[1:4] == ["deprecated", dated(20), "20"]
    assert "team search" in lines[soon + 1]


def test_audit_with_a_ledger_that_does_not_exist_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = audit(capsys, "--sqlite", str(tmp_path / "missing.db"))
    assert code == 2
    assert "does not exist" in err
