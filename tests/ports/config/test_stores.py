"""Both config stores keep the same contract: versions numbered from 1 in the order they
were stored, read back exactly (document key order included), the newest one first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tollhouse.config.document import content_hash
from tollhouse.ports.config.base import (
    ConfigStore,
    ConfigVersion,
    VersionConflict,
    VersionNotFound,
)

Run = Callable[..., Any]

DOCUMENT: dict[str, Any] = {
    "providers": {
        "zeta": {"type": "anthropic", "api_key": "env:ANTHROPIC_API_KEY"},
        "alpha": {"type": "simulator"},
    },
    "models": {"fast": {"deployments": [{"provider": "alpha", "model": "claude-haiku-4-5"}]}},
    "flags": {"new_prompt": True},
}


def test_a_stored_version_reads_back_exactly(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> tuple[ConfigVersion, ConfigVersion]:
        stored, created = await store.add(DOCUMENT, source="cli", note="first")
        assert created
        return stored, await store.get(stored.id)

    stored, read = on_store(scenario)
    assert read == stored
    assert read.id == 1
    assert read.source == "cli"
    assert read.note == "first"
    assert read.content_hash == content_hash(DOCUMENT)
    assert read.document == DOCUMENT
    assert list(read.document["providers"]) == ["zeta", "alpha"]  # as written, not sorted
    assert read.created_at.tzinfo is not None


def test_ids_grow_by_one_and_history_is_newest_first(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> tuple[list[ConfigVersion], list[ConfigVersion]]:
        for n in range(5):
            await store.add({**DOCUMENT, "flags": {"n": n}}, source="admin", note=f"v{n}")
        return await store.history(limit=3), await store.history(limit=10, before=3)

    newest, older = on_store(scenario)
    assert [v.id for v in newest] == [5, 4, 3]
    assert [v.note for v in newest] == ["v4", "v3", "v2"]
    assert [v.id for v in older] == [2, 1]


def test_latest_and_latest_id_name_the_newest_version(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> list[Any]:
        empty = [await store.latest(), await store.latest_id()]
        await store.add(DOCUMENT, source="file")
        second, _ = await store.add({}, source="cli")
        latest = await store.latest()
        return [*empty, latest, await store.latest_id(), second]

    no_version, no_id, latest, latest_id, second = on_store(scenario)
    assert (no_version, no_id) == (None, None)
    assert latest == second
    assert latest_id == 2


def test_same_content_as_the_newest_is_not_stored_again_when_asked(on_store: Run) -> None:
    reordered = {"flags": DOCUMENT["flags"], **DOCUMENT}  # same content, other key order

    async def scenario(store: ConfigStore) -> list[tuple[ConfigVersion, bool]]:
        first = await store.add(DOCUMENT, source="file", unless_latest_has_same_content=True)
        again = await store.add(reordered, source="file", unless_latest_has_same_content=True)
        forced = await store.add(reordered, source="cli")
        return [first, again, forced]

    (first, created), (again, created_again), (forced, created_forced) = on_store(scenario)
    assert (created, created_again, created_forced) == (True, False, True)
    assert again == first
    assert forced.id == 2
    assert forced.content_hash == first.content_hash


def test_a_change_based_on_an_older_version_is_refused(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> tuple[int | None, int | None]:
        await store.add(DOCUMENT, source="file")
        await store.add({}, source="admin", expect_latest=1)
        with pytest.raises(VersionConflict) as refused:
            await store.add({"flags": {}}, source="cli", expect_latest=1)
        return refused.value.latest, await store.latest_id()

    latest_seen, latest_id = on_store(scenario)
    assert latest_seen == 2
    assert latest_id == 2


def test_a_rollback_records_the_version_it_restores(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> ConfigVersion:
        await store.add(DOCUMENT, source="file")
        await store.add({}, source="admin")
        back, _ = await store.add(DOCUMENT, source="rollback", note="bad change", restores=1)
        return await store.get(back.id)

    back = on_store(scenario)
    assert (back.id, back.source, back.restores) == (3, "rollback", 1)
    assert back.summary()["restores"] == 1


def test_an_unknown_version_is_not_found(on_store: Run) -> None:
    async def scenario(store: ConfigStore) -> None:
        await store.get(7)

    with pytest.raises(VersionNotFound, match="no config version 7"):
        on_store(scenario)


def test_concurrent_writers_on_one_database_never_share_an_id(
    new_store: Callable[[], ConfigStore],
) -> None:
    """Two stores (two gateways) on one database, adding at once: every id taken once."""

    async def main() -> list[int]:
        stores = [new_store(), new_store()]
        try:

            async def writer(store: ConfigStore, n: int) -> list[int]:
                ids = []
                for i in range(10):
                    version, _ = await store.add({"flags": {"w": n, "i": i}}, source="cli")
                    ids.append(version.id)
                return ids

            results = await asyncio.gather(*(writer(s, n) for n, s in enumerate(stores)))
            return sorted(i for ids in results for i in ids)
        finally:
            for store in stores:
                await store.aclose()

    assert asyncio.run(main()) == list(range(1, 21))
