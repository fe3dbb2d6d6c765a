"""`ConfigChanges`, the one way versions are made (CLI, admin API, the gateway itself):
only documents that load and build are stored, a rollback restores an earlier document as
a new version, a flag change is a new version with only that flag changed, and secrets
stay references in every version and diff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tollhouse.config import ConfigError
from tollhouse.config_versions.changes import ConfigChanges, parse_flag_value
from tollhouse.errors import BadRequest, NotFound
from tollhouse.ports.config.base import VersionConflict
from tollhouse.ports.config.sqlite import SQLiteConfigStore

T = TypeVar("T")
SECRET = "sk-ant-very-secret-value"

BASE: dict[str, Any] = {
    "flags": {"fast_model": "claude-haiku-4-5", "cautious": False, "budget": 10},
    "providers": {
        "sim": {"type": "simulator"},
        "anthropic": {"type": "anthropic", "api_key": "env:TEST_CHANGES_KEY"},
    },
    "models": {"fast": {"deployments": [{"provider": "sim", "model": "flag:fast_model"}]}},
}


@pytest.fixture
def on_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[ConfigChanges], Awaitable[T]]], T]:
    monkeypatch.setenv("TEST_CHANGES_KEY", SECRET)

    def run(scenario: Callable[[ConfigChanges], Awaitable[T]]) -> T:
        async def main() -> T:
            store = SQLiteConfigStore(tmp_path / "config.db")
            try:
                return await scenario(ConfigChanges(store))
            finally:
                await store.aclose()

        return asyncio.run(main())

    return run


def with_models(model: str) -> dict[str, Any]:
    return {**BASE, "models": {"fast": {"deployments": [{"provider": "sim", "model": model}]}}}


def test_a_document_that_does_not_load_is_refused_and_nothing_is_stored(on_changes: Any) -> None:
    broken = {**BASE, "models": {"fast": {"deployments": [{"provider": "nope", "model": "x"}]}}}

    async def scenario(changes: ConfigChanges) -> int | None:
        await changes.apply(BASE, source="cli")
        with pytest.raises(ConfigError, match=r"\$\.models\.fast\.deployments\[0\]\.provider"):
            await changes.apply(broken, source="cli")
        return await changes.store.latest_id()

    assert on_changes(scenario) == 1


def test_a_secret_that_does_not_resolve_here_is_refused(
    on_changes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(changes: ConfigChanges) -> None:
        monkeypatch.delenv("TEST_CHANGES_KEY")
        await changes.apply(BASE, source="admin")

    with pytest.raises(ConfigError, match="environment variable TEST_CHANGES_KEY is not set"):
        on_changes(scenario)


def test_an_inline_secret_is_refused(on_changes: Any) -> None:
    inline = {**BASE, "providers": {**BASE["providers"], "anthropic": {"type": "anthropic"}}}
    inline["providers"]["anthropic"]["api_key"] = SECRET

    async def scenario(changes: ConfigChanges) -> None:
        await changes.apply(inline, source="cli")

    with pytest.raises(ConfigError, match="expected a secret reference") as refused:
        on_changes(scenario)
    assert SECRET not in str(refused.value)


def test_secrets_stay_references_in_every_version_and_diff(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> tuple[str, list[Any]]:
        await changes.apply(BASE, source="cli")
        await changes.set_flag("cautious", True, source="cli")
        await changes.rollback()
        return await changes.diff(1, 2), await changes.store.history()

    text, versions = on_changes(scenario)
    assert "cautious: false" in text
    assert "cautious: true" in text
    for version in versions:
        assert SECRET not in repr(version)
        assert version.document["providers"]["anthropic"]["api_key"] == "env:TEST_CHANGES_KEY"


def test_applying_the_newest_content_again_stores_nothing(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> tuple[bool, bool, int]:
        first = await changes.apply(BASE, source="cli", note="first")
        again = await changes.apply(dict(reversed(list(BASE.items()))), source="admin")
        return first.created, again.created, again.version.id

    assert on_changes(scenario) == (True, False, 1)


def test_a_change_to_a_start_only_setting_says_it_takes_effect_at_restart(
    on_changes: Any,
) -> None:
    moved = {**BASE, "ledger": {"batch_size": 50}, "timeouts": {"total": 30}}

    async def scenario(changes: ConfigChanges) -> tuple[str, ...]:
        await changes.apply(BASE, source="cli")
        return (await changes.apply(moved, source="cli")).restart_needed

    assert on_changes(scenario) == ("ledger",)


def test_rollback_without_a_version_restores_the_last_other_content(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> list[tuple[int, str, int | None]]:
        await changes.apply(with_models("claude-haiku-4-5"), source="cli")  # 1
        await changes.apply(with_models("claude-sonnet-4-5"), source="cli")  # 2
        await changes.rollback()  # 3 restores 1
        await changes.rollback()  # 4 restores 2, the last content other than 3's
        await changes.rollback(1, note="back to the start")  # 5
        history = await changes.store.history()
        return [(v.id, v.source, v.restores) for v in history]

    assert on_changes(scenario) == [
        (5, "rollback", 1),
        (4, "rollback", 2),
        (3, "rollback", 1),
        (2, "cli", None),
        (1, "cli", None),
    ]


def test_rollback_with_nothing_to_go_back_to_is_refused(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> None:
        with pytest.raises(NotFound, match="no config version to roll back from"):
            await changes.rollback()
        await changes.apply(BASE, source="cli")
        await changes.rollback()

    with pytest.raises(BadRequest, match="no version before 1 has other content"):
        on_changes(scenario)


def test_setting_a_flag_changes_only_that_flag(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> tuple[Any, ...]:
        await changes.apply(BASE, source="file")
        applied = await changes.set_flag("fast_model", "claude-sonnet-4-5", source="admin")
        return applied.version, await changes.flags()

    version, (newest, flags) = on_changes(scenario)
    assert (version.id, version.source, newest) == (2, "admin", 2)
    assert version.note == "flag fast_model = 'claude-sonnet-4-5'"
    assert flags == {**BASE["flags"], "fast_model": "claude-sonnet-4-5"}
    assert {k: v for k, v in version.document.items() if k != "flags"} == {
        k: v for k, v in BASE.items() if k != "flags"
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("nope", True, "unknown flag 'nope'; defined flags: budget, cautious, fast_model"),
        ("cautious", "yes", "flag cautious is a boolean; got a string"),
        ("budget", True, "flag budget is a number; got a boolean"),
        ("fast_model", 3, "flag fast_model is a string; got a number"),
    ],
)
def test_an_unknown_flag_or_a_value_of_another_kind_is_refused(
    on_changes: Any, name: str, value: Any, message: str
) -> None:
    async def scenario(changes: ConfigChanges) -> None:
        await changes.apply(BASE, source="file")
        await changes.set_flag(name, value, source="cli")

    with pytest.raises(BadRequest, match=message):
        on_changes(scenario)


def test_a_flag_value_that_breaks_the_config_is_refused(on_changes: Any) -> None:
    flags = {**BASE["flags"], "ttl": 10}
    document = {**BASE, "flags": flags, "models": {"fast": {**BASE["models"]["fast"]}}}
    document["models"]["fast"]["cache"] = {"ttl_seconds": "flag:ttl"}

    async def scenario(changes: ConfigChanges) -> None:
        await changes.apply(document, source="file")
        await changes.set_flag("ttl", -5, source="cli")

    with pytest.raises(ConfigError, match=r"\$\.models\.fast\.cache\.ttl_seconds"):
        on_changes(scenario)


def test_flag_changes_at_once_lose_none_of_them(tmp_path: Path, on_changes: Any) -> None:
    """Two writers (two stores on one file) setting different flags at once: each change
    lands on top of the other, none overwritten."""

    async def scenario(changes: ConfigChanges) -> dict[str, Any]:
        await changes.apply(BASE, source="file")
        other = ConfigChanges(SQLiteConfigStore(tmp_path / "config.db"))
        try:
            await asyncio.gather(
                changes.set_flag("cautious", True, source="cli"),
                other.set_flag("budget", 20, source="admin"),
            )
        finally:
            await other.store.aclose()
        return (await changes.flags())[1]

    flags = on_changes(scenario)
    assert (flags["cautious"], flags["budget"]) == (True, 20)


def test_a_change_based_on_an_older_version_is_a_conflict(on_changes: Any) -> None:
    async def scenario(changes: ConfigChanges) -> None:
        await changes.apply(BASE, source="file")
        await changes.apply(with_models("claude-sonnet-4-5"), source="cli")
        await changes.apply(BASE, source="auto", expect_latest=1)

    with pytest.raises(VersionConflict, match="based on version 1, the newest is 2"):
        on_changes(scenario)


@pytest.mark.parametrize(
    ("text", "current", "value"),
    [
        ("true", False, True),
        ("FALSE", True, False),
        ("20", 1, 20),
        ("0.5", 1, 0.5),
        ("x", "y", "x"),
    ],
)
def test_a_typed_flag_value_is_read_as_the_flags_kind(text: str, current: Any, value: Any) -> None:
    parsed = parse_flag_value(text, current)
    assert parsed == value
    assert type(parsed) is type(value)
