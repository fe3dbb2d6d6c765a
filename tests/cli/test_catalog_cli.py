"""`tollhouse catalog show` and `tollhouse catalog update`: an updated catalog, validated,
stored as a new config version that running gateways serve and a rollback undoes; and
`catalog.path` / `catalog.base` read by the gateway."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.stages.test_keys_limits_budgets import HI, claude
from tests.stages.test_lifecycle import OPEN, dated, entry, http_date
from tests.support import IN_PROCESS_CONFIG

from tollhouse.cli import main
from tollhouse.config import ConfigError, parse_config
from tollhouse.gateway import Gateway
from tollhouse.gateway_parts import build_parts
from tollhouse.ports.config.sqlite import SQLiteConfigStore
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

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
        "keys": {"sqlite_path": str(tmp_path / "keys.db")},
        "config_store": {"poll_seconds": 0.1},
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


def newest_catalog(tmp_path: Path) -> tuple[int, dict[str, Any] | None]:
    async def read() -> tuple[int, dict[str, Any] | None]:
        store = SQLiteConfigStore(tmp_path / "keys.db")
        try:
            version = await store.latest()
            assert version is not None
            return version.id, version.document.get("catalog")
        finally:
            await store.aclose()

    return asyncio.run(read())


def served_version(url: str) -> int:
    version: int = httpx.get(url + "/readyz", timeout=10).json()["config_version"]
    return version


def wait_for_version(url: str, version: int) -> None:
    deadline = time.monotonic() + 20
    while served_version(url) != version:
        assert time.monotonic() < deadline, f"never served version {version}"
        time.sleep(0.05)


def test_update_is_a_config_version_every_gateway_serves_and_a_rollback_undoes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, catalog_file(tmp_path / "catalog.yaml"))
    document = yaml.safe_load(config.read_text())
    gateway = Gateway(parse_config(document), document=document, note="start")
    with BackgroundServer(create_app(gateway)) as server:
        assert served_version(server.url) == 1
        newer = catalog_file(
            tmp_path / "newer.yaml",
            state="deprecated",
            deprecated_on=dated(-2),
            retires_on=dated(40),
        )
        code, out, err = cli(capsys, "catalog", "update", str(newer), "--config", str(config))
        assert code == 0, err
        assert "changed my-claude lifecycle" in out
        assert "config version 2: catalog update from newer.yaml" in out
        version, section = newest_catalog(tmp_path)
        assert version == 2
        assert section == {"base": yaml.safe_load(newer.read_text())}  # `path` replaced
        wait_for_version(server.url, 2)
        with claude(server.url, OPEN) as client:
            raw = client.messages.with_raw_response.create(model="mine", max_tokens=5, messages=HI)
            assert raw.headers["sunset"] == http_date(dated(40))
            assert raw.headers["x-tollhouse-config-version"] == "2"

            code, out, _ = cli(capsys, "catalog", "update", str(newer), "--config", str(config))
            assert code == 0
            assert "unchanged: config version 2 already serves this catalog" in out

            assert main(["config", "rollback", "--config", str(config)]) == 0
            wait_for_version(server.url, 3)
            raw = client.messages.with_raw_response.create(model="mine", max_tokens=5, messages=HI)
            assert "sunset" not in raw.headers


def test_dry_run_prints_the_changes_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, catalog_file(tmp_path / "catalog.yaml"))
    assert main(["config", "apply", str(config), "--config", str(config)]) == 0
    newer = catalog_file(tmp_path / "newer.yaml", state="legacy")
    code, out, _ = cli(
        capsys, "catalog", "update", str(newer), "--config", str(config), "--dry-run"
    )
    assert code == 0
    assert "changed my-claude lifecycle" in out
    assert "dry run: no version stored" in out
    assert newest_catalog(tmp_path)[0] == 1


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
def test_update_refuses_an_invalid_catalog_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: dict[str, Any], problem: str
) -> None:
    config = config_file(tmp_path, catalog_file(tmp_path / "catalog.yaml"))
    assert main(["config", "apply", str(config), "--config", str(config)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    code, _, err = cli(capsys, "catalog", "update", str(bad), "--config", str(config))
    assert code == 2
    assert problem in err
    assert str(bad) in err
    assert newest_catalog(tmp_path)[0] == 1


def test_update_refuses_a_catalog_the_versions_overrides_do_not_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = catalog_file(tmp_path / "catalog.yaml")
    config = tmp_path / "tollhouse.yaml"
    override = {"id": "other", "lifecycle": {"replacement": "my-claude"}}
    config.write_text(
        yaml.safe_dump(
            {
                "catalog": {"path": str(installed), "models": [override]},
                "keys": {"sqlite_path": str(tmp_path / "keys.db")},
            }
        )
    )
    # `other` is in neither catalog: the override adds it and must then be complete, so the
    # version before is refused too; store it as it is to have a newest version.
    asyncio.run(_store_raw(tmp_path, yaml.safe_load(config.read_text())))
    code, _, err = cli(capsys, "catalog", "update", str(installed), "--config", str(config))
    assert code == 2
    assert "overrides[0] (other)" in err
    assert newest_catalog(tmp_path)[0] == 1


async def _store_raw(tmp_path: Path, document: dict[str, Any]) -> None:
    store = SQLiteConfigStore(tmp_path / "keys.db")
    try:
        await store.add(document, source="file", note="start")
    finally:
        await store.aclose()


def test_update_before_any_version_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, catalog_file(tmp_path / "catalog.yaml"))
    newer = catalog_file(tmp_path / "newer.yaml")
    code, _, err = cli(capsys, "catalog", "update", str(newer), "--config", str(config))
    assert code == 2
    assert "no config version yet" in err


def test_a_config_with_both_a_catalog_path_and_base_is_refused(tmp_path: Path) -> None:
    base = {"models": [entry("my-claude", "anthropic")]}
    with pytest.raises(ConfigError, match=r"set `path` or `base`"):
        parse_config({"catalog": {"path": str(tmp_path / "x.yaml"), "base": base}})


def test_an_invalid_inline_catalog_is_refused_naming_it() -> None:
    config = parse_config({"catalog": {"base": {"models": [{"id": "x"}]}}})
    with pytest.raises(ConfigError, match=r"\$\.catalog: catalog\.base: .*missing required"):
        build_parts(config)


def test_a_config_whose_catalog_path_is_unreadable_is_refused_naming_it(tmp_path: Path) -> None:
    config = parse_config({"catalog": {"path": str(tmp_path / "missing.yaml")}})
    with pytest.raises(ConfigError, match=r"\$\.catalog: .*missing\.yaml: cannot read"):
        build_parts(config)
