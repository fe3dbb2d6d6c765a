"""`KeyRing.authenticate`: the request path's key check, cached so a hot key costs no
database round trip, with refusals that say why and never echo the secret."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from tollhouse.errors import AuthError, PermissionDenied
from tollhouse.ports.keys.key_ring import KeyRing, check_model
from tollhouse.ports.keys.record import KeyRecord, KeySpec
from tollhouse.ports.keys.sqlite import SQLiteKeyStore

T = TypeVar("T")
NOW = datetime.now(UTC)


class CountingStore(SQLiteKeyStore):
    """A real SQLite store that counts the lookups the ring makes."""

    lookups = 0

    async def find_by_secret(self, secret: str) -> KeyRecord | None:
        self.lookups += 1
        return await super().find_by_secret(secret)


class Clocks:
    """The ring's two clocks, moved by hand: wall time (expiry, grace) and monotonic (TTL)."""

    def __init__(self) -> None:
        self.now = NOW
        self.tick = 0.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.tick += seconds


def run(tmp_path: Path, scenario: Callable[[CountingStore, KeyRing, Clocks], Awaitable[T]]) -> T:
    async def main() -> T:
        store = CountingStore(tmp_path / "keys.db")
        clocks = Clocks()
        ring = KeyRing(
            store,
            ttl=5,
            negative_ttl=1,
            max_unknown=3,
            wall_clock=lambda: clocks.now.timestamp(),
            monotonic=lambda: clocks.tick,
        )
        try:
            return await scenario(store, ring, clocks)
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_authenticate_returns_the_key_of_a_valid_secret(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> bool:
        record, secret = await store.create(KeySpec(name="k"))
        return (await ring.authenticate(secret)).key_id == record.key_id

    assert run(tmp_path, scenario)


def test_a_cached_key_costs_no_store_lookup(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> int:
        _, secret = await store.create(KeySpec(name="k"))
        for _ in range(100):
            await ring.authenticate(secret)
            clocks.advance(0.01)
        return store.lookups

    assert run(tmp_path, scenario) == 1


def test_a_burst_with_a_new_secret_shares_one_store_lookup(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> tuple[int, int]:
        record, secret = await store.create(KeySpec(name="k"))
        found = await asyncio.gather(*(ring.authenticate(secret) for _ in range(50)))
        assert {key.key_id for key in found} == {record.key_id}
        refused = await asyncio.gather(
            *(ring.authenticate("sk-th-not-a-key") for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(error, AuthError) for error in refused)
        return store.lookups, len(ring._fetching)

    assert run(tmp_path, scenario) == (2, 0)  # one per secret; nothing left under way


def test_a_waiter_going_away_does_not_cancel_the_shared_lookup(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> int:
        record, secret = await store.create(KeySpec(name="k"))
        first = asyncio.create_task(ring.authenticate(secret))
        second = asyncio.create_task(ring.authenticate(secret))
        await asyncio.sleep(0)  # both are waiting on the one lookup
        first.cancel()
        assert (await second).key_id == record.key_id
        with pytest.raises(asyncio.CancelledError):
            await first
        return store.lookups

    assert run(tmp_path, scenario) == 1


def test_a_revocation_is_seen_once_the_ttl_has_passed(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> str:
        record, secret = await store.create(KeySpec(name="k"))
        await ring.authenticate(secret)
        await store.revoke(record.key_id)
        await ring.authenticate(secret)  # still cached: within the TTL
        clocks.advance(5)
        with pytest.raises(AuthError) as refused:
            await ring.authenticate(secret)
        return refused.value.message

    assert run(tmp_path, scenario).endswith("is revoked")


def test_forget_makes_a_change_visible_at_once(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> None:
        record, secret = await store.create(KeySpec(name="k"))
        await ring.authenticate(secret)
        await store.revoke(record.key_id)
        ring.forget(record.key_id)
        await ring.authenticate(secret)

    with pytest.raises(AuthError, match="revoked"):
        run(tmp_path, scenario)


def test_an_unknown_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    garbage = "th-ThisIsNotAKeyAtAll0123456789abcdefghijklmn"

    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> str:
        with pytest.raises(AuthError) as refused:
            await ring.authenticate(garbage)
        return refused.value.message

    message = run(tmp_path, scenario)
    assert message == "invalid API key"
    assert garbage[3:10] not in message


def test_a_missing_secret_is_refused_with_401(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> int:
        with pytest.raises(AuthError) as refused:
            await ring.authenticate("")
        return refused.value.status

    assert run(tmp_path, scenario) == 401


def test_an_unknown_secret_is_cached_briefly(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> list[int]:
        counts = []
        for step in (0, 0.5, 1.0):
            clocks.advance(step)
            with pytest.raises(AuthError):
                await ring.authenticate("th-unknown")
            counts.append(store.lookups)
        return counts

    assert run(tmp_path, scenario) == [1, 1, 2]


def test_random_garbage_keys_never_evict_a_real_key(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> tuple[int, int]:
        _, secret = await store.create(KeySpec(name="k"))
        await ring.authenticate(secret)
        for n in range(50):
            with pytest.raises(AuthError):
                await ring.authenticate(f"th-garbage-{n}")
        before = store.lookups
        await ring.authenticate(secret)
        return store.lookups - before, len(ring._unknown)

    assert run(tmp_path, scenario) == (0, 3)


def test_an_expired_key_is_refused_even_while_cached(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> None:
        _, secret = await store.create(
            KeySpec(name="k", expires_at=datetime.now(UTC) + timedelta(seconds=2))
        )
        await ring.authenticate(secret)
        clocks.now = datetime.now(UTC) + timedelta(seconds=3)
        await ring.authenticate(secret)

    with pytest.raises(AuthError, match=r"key_[0-9a-f]{12} is expired"):
        run(tmp_path, scenario)


def test_the_old_secret_works_during_the_grace_period(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> str:
        record, old = await store.create(KeySpec(name="k"))
        await store.rotate(record.key_id, grace_seconds=3600)
        clocks.now = datetime.now(UTC) + timedelta(minutes=59)
        return (await ring.authenticate(old)).key_id

    assert run(tmp_path, scenario).startswith("key_")


def test_the_old_secret_is_refused_as_rotated_after_the_grace_period(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> None:
        record, old = await store.create(KeySpec(name="k"))
        await store.rotate(record.key_id, grace_seconds=3600)
        clocks.now = datetime.now(UTC) + timedelta(minutes=61)
        await ring.authenticate(old)

    with pytest.raises(AuthError, match="was rotated"):
        run(tmp_path, scenario)


def test_rotation_without_grace_refuses_the_old_secret_at_once(tmp_path: Path) -> None:
    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> None:
        record, old = await store.create(KeySpec(name="k"))
        await store.rotate(record.key_id)
        clocks.now = datetime.now(UTC)
        await ring.authenticate(old)

    with pytest.raises(AuthError, match="was rotated"):
        run(tmp_path, scenario)


def key(*allowed: str) -> KeyRecord:
    return KeyRecord(
        key_id="key_abc",
        name="k",
        prefix="th-x",
        secret_hash="0",
        created_at=NOW,
        allowed_models=allowed,
    )


def test_a_key_without_scopes_may_use_any_model() -> None:
    check_model(key(), "anything-at-all")


def test_a_scope_glob_allows_the_models_it_matches() -> None:
    check_model(key("claude-haiku-*", "gpt-4o-mini"), "claude-haiku-4-5")


def test_a_model_outside_the_scopes_is_refused_with_403_naming_it() -> None:
    with pytest.raises(PermissionDenied, match="'gpt-4o'") as refused:
        check_model(key("claude-*", "gpt-4o-mini"), "gpt-4o")
    assert refused.value.status == 403


def test_a_cached_old_secret_is_refused_once_its_grace_period_ends(tmp_path: Path) -> None:
    """The ring remembers until when a secret is good; the end of a grace period is still
    seen on the first request after it, cache or not."""

    async def scenario(store: CountingStore, ring: KeyRing, clocks: Clocks) -> list[str]:
        record, old = await store.create(KeySpec(name="k"))
        await store.rotate(record.key_id, grace_seconds=2)
        clocks.now = datetime.now(UTC)
        seen = [(await ring.authenticate(old)).key_id, (await ring.authenticate(old)).key_id]
        clocks.now += timedelta(seconds=3)  # within the ring's TTL: the record is cached
        try:
            await ring.authenticate(old)
        except AuthError as error:
            seen.append(str(error))
        assert store.lookups == 1
        return seen

    first, second, refusal = run(tmp_path, scenario)
    assert first == second
    assert first.startswith("key_")
    assert "was rotated" in refusal
