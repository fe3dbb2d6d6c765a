"""`tollhouse catalog show` and `tollhouse catalog update`, and `catalog.path` read by the
gateway: an updated catalog, validated before it is written, serves the next start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.stages.test_keys_limits_budgets import HI, claude
from tests.stages.test_lifecycle import OPEN, dated, entry, http_date
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.cli import main
from tollhouse.config import ConfigError, parse_config
from tollhouse.gateway_parts import build_parts

ROUTES = {"mine": {"deployments": [{"provider": "sim-anthropic", "model": "my-claude"}]}}


def catalog_file(path: Path, **lifecycle: Any) -> Path:
    path.write_text(yaml.safe_dump({"models": [entry("my-claude", "anthropic", **lifecycle)]}))
    return path


def config_file(tmp_path: Path, catalog_path: Path) -> Path:
    config = {
        **IN_PROCESS_CONFIG,
        "models": ROUTES,
        "catalog": {"path": str(catalog_path)},
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
    }
    path = tmp_path / "tollhouse.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_prints_a_models_entry_with_its_state_today(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "catalog", "show", "claude-haiku-4-5", "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown["id"] == "claude-haiku-4-5-20251001"  # found by its alias
    assert shown["provider"] == "anthropic"
    assert shown["pricing"]["input"] == "1"
    assert shown["state_today"] in ("active", "legacy", "deprecated", "retired")


def test_show_of_an_unknown_model_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "catalog", "show", "no-such-model")
    assert code == 2
    assert "'no-such-model' is not in the catalog" in err


def test_update_validates_installs_and_the_next_gateway_serves_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = catalog_file(tmp_path / "catalog.yaml")
    config = config_file(tmp_path, installed)
    newer = catalog_file(
        tmp_path / "newer.yaml", state="deprecated", deprecated_on=dated(-2), retires_on=dated(40)
    )
    code, out, _ = cli(capsys, "catalog", "update", str(newer), "--config", str(config))
    assert code == 0
    assert "changed my-claude lifecycle" in out
    assert (tmp_path / "catalog.yaml.previous").exists()
    code, out, _ = cli(capsys, "catalog", "show", "my-claude", "--config", str(config))
    assert code == 0
    assert "state_today: deprecated" in out
    assert "days_left: 40" in out
    server = serve_gateway(yaml.safe_load(config.read_text()))
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="mine", max_tokens=5, messages=HI
        )
    finally:
        server.stop()
    assert raw.headers["sunset"] == http_date(dated(40))


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"models": [{"id": "x"}]}, "Object missing required field"),
        (
            {"models": [{**entry("a", "anthropic"), "lifecycle": {"replacement": "nope"}}]},
            "names no catalog model",
        ),
        (
            {"models": [{**entry("a", "anthropic"), "pricing": {"input": "-1", "output": "1"}}]},
            "must be a price >= 0",
        ),
    ],
)
def test_update_refuses_an_invalid_catalog_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: dict[str, Any], problem: str
) -> None:
    installed = catalog_file(tmp_path / "catalog.yaml")
    before = installed.read_text()
    config = config_file(tmp_path, installed)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    code, _, err = cli(capsys, "catalog", "update", str(bad), "--config", str(config))
    assert code == 2
    assert problem in err
    assert str(bad) in err
    assert installed.read_text() == before


def test_update_refuses_a_catalog_the_configs_overrides_do_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = catalog_file(tmp_path / "catalog.yaml")
    config = tmp_path / "tollhouse.yaml"
    override = {"id": "other", "lifecycle": {"replacement": "my-claude"}}
    config.write_text(yaml.safe_dump({"catalog": {"path": str(installed), "models": [override]}}))
    # `other` is in neither file: the override adds it and must then be complete.
    code, _, err = cli(capsys, "catalog", "update", str(installed), "--config", str(config))
    assert code == 2
    assert "overrides[0] (other)" in err


def test_update_without_catalog_path_in_the_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tollhouse.yaml"
    config.write_text(yaml.safe_dump({"models": {}}))
    newer = catalog_file(tmp_path / "newer.yaml")
    code, _, err = cli(capsys, "catalog", "update", str(newer), "--config", str(config))
    assert code == 2
    assert "catalog.path is not set" in err


def test_a_config_whose_catalog_path_is_unreadable_is_refused_naming_it(tmp_path: Path) -> None:
    config = parse_config({"catalog": {"path": str(tmp_path / "missing.yaml")}})
    with pytest.raises(ConfigError, match=r"\$\.catalog: .*missing\.yaml: cannot read"):
        build_parts(config)
