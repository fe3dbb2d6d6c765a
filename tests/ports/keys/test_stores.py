"""Both key stores keep the same contract: create, find by secret, revoke, rotate, update,
list; the secret itself is never stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tollhouse.config.model import Budget, InputLimits, Limits
from tollhouse.ports.keys.base import KeyNotFound, KeyRevoked, KeyStore
from tollhouse.ports.keys.record import KeyRecord, KeySpec

Run = Callable[..., Any]

FULL_SPEC = KeySpec(
    name="checkout service",
    user="ada",
    team="payments",
    project="checkout",
    allowed_models=("claude-haiku-*", "gpt-4o-mini"),
    limits=Limits(rpm=60, input_tpm=100_000, output_tpm=20_000, concurrency=4),
    budget=Budget(daily_usd=Decimal("12.50"), monthly_usd=Decimal("0.0000001")),
    end_users=True,
    end_user_limits=Limits(rpm=5),
    end_user_budget=Budget(daily_usd=Decimal("0.25")),
    caps=InputLimits(max_tokens_cap=1024, max_tokens_mode="refuse", max_messages=50),
    expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    metadata={"ticket": "OPS-42", "tags": ["a", "b"]},
)


def test_created_key_reads_back_with_every_field(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord, KeyRecord]:
        record, _ = await store.create(FULL_SPEC)
        return record, await store.get(record.key_id)

    created, read = on_store(scenario)
    assert read == created
    assert read.budget.monthly_usd == Decimal("0.0000001")
    assert read.caps.max_tokens_mode == "refuse"


def test_created_key_has_public_id_prefix_and_high_entropy_secret(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord, str]:
        return await store.create(KeySpec(name="k"))

    record, secret = on_store(scenario)
    assert record.key_id.startswith("key_")
    assert len(record.key_id) == 16
    assert secret.startswith("th-")
    assert len(secret) == 3 + 43
    assert secret.startswith(record.prefix)
    assert len(record.prefix) == 8


def test_find_by_secret_returns_the_key_and_none_for_an_unknown_secret(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord | None, KeyRecord | None, str]:
        record, secret = await store.create(KeySpec(name="k"))
        return (
            await store.find_by_secret(secret),
            await store.find_by_secret("th-nope"),
            record.key_id,
        )

    found, unknown, key_id = on_store(scenario)
    assert found is not None
    assert found.key_id == key_id
    assert unknown is None


def test_get_of_an_unknown_id_raises_key_not_found(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.get("key_000000000000")

    with pytest.raises(KeyNotFound):
        on_store(scenario)


def test_revoke_marks_the_key_and_a_second_revoke_keeps_the_first_time(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord, KeyRecord]:
        record, _ = await store.create(KeySpec(name="k"))
        return await store.revoke(record.key_id), await store.revoke(record.key_id)

    first, second = on_store(scenario)
    assert first.revoked_at is not None
    assert second.revoked_at == first.revoked_at


def test_list_leaves_out_revoked_keys_unless_asked(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[list[str], list[str]]:
        await store.create(KeySpec(name="kept"))
        gone, _ = await store.create(KeySpec(name="gone"))
        await store.revoke(gone.key_id)
        active = [record.name for record in await store.list()]
        every = [record.name for record in await store.list(include_revoked=True)]
        return active, every

    assert on_store(scenario) == (["kept"], ["kept", "gone"])


def test_rotate_gives_a_new_secret_for_the_same_key(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord, str, KeyRecord, str]:
        old, old_secret = await store.create(FULL_SPEC)
        new, new_secret = await store.rotate(old.key_id, grace_seconds=60)
        return old, old_secret, new, new_secret

    old, old_secret, new, new_secret = on_store(scenario)
    assert new.key_id == old.key_id
    assert new_secret != old_secret
    assert new.rotated_from == old.prefix
    assert (new.limits, new.budget, new.allowed_models) == (
        old.limits,
        old.budget,
        old.allowed_models,
    )


def test_old_secret_still_finds_the_key_during_the_grace_period(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord | None, KeyRecord | None, datetime]:
        old, old_secret = await store.create(KeySpec(name="k"))
        _, new_secret = await store.rotate(old.key_id, grace_seconds=3600)
        return (
            await store.find_by_secret(old_secret),
            await store.find_by_secret(new_secret),
            datetime.now(UTC),
        )

    by_old, by_new, now = on_store(scenario)
    assert by_old is not None
    assert by_new is not None
    assert by_old == by_new
    assert by_old.previous_secret_valid_until is not None
    assert by_old.previous_secret_valid_until > now + timedelta(minutes=59)


def test_rotating_twice_drops_the_first_secret(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> KeyRecord | None:
        record, first = await store.create(KeySpec(name="k"))
        await store.rotate(record.key_id, grace_seconds=3600)
        await store.rotate(record.key_id, grace_seconds=3600)
        return await store.find_by_secret(first)

    assert on_store(scenario) is None


def test_rotating_a_revoked_key_is_refused(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> None:
        record, _ = await store.create(KeySpec(name="k"))
        await store.revoke(record.key_id)
        await store.rotate(record.key_id)

    with pytest.raises(KeyRevoked):
        on_store(scenario)


def test_update_changes_limits_budget_and_scopes_and_keeps_the_rest(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> tuple[KeyRecord, KeyRecord]:
        record, _ = await store.create(FULL_SPEC)
        await store.update(
            record.key_id,
            limits=Limits(rpm=1),
            budget=Budget(monthly_usd=Decimal("99.99")),
            allowed_models=("claude-*",),
            expires_at=None,
        )
        return record, await store.get(record.key_id)

    before, after = on_store(scenario)
    assert after.limits == Limits(rpm=1)
    assert after.budget == Budget(monthly_usd=Decimal("99.99"))
    assert after.allowed_models == ("claude-*",)
    assert after.expires_at is None
    assert (after.secret_hash, after.end_user_limits, after.metadata) == (
        before.secret_hash,
        before.end_user_limits,
        before.metadata,
    )


def test_update_of_a_field_that_is_not_in_the_spec_is_refused(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> None:
        record, _ = await store.create(KeySpec(name="k"))
        await store.update(record.key_id, secret_hash="0" * 64)

    with pytest.raises(ValueError, match="secret_hash"):
        on_store(scenario)


def test_update_with_a_value_out_of_bounds_is_refused_naming_the_field(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> None:
        record, _ = await store.create(KeySpec(name="k"))
        await store.update(record.key_id, limits=Limits(rpm=0))

    with pytest.raises(msgspec.ValidationError, match=r"limits\.rpm"):
        on_store(scenario)


def test_update_of_an_unknown_id_raises_key_not_found(on_store: Run) -> None:
    async def scenario(store: KeyStore) -> None:
        await store.update("key_000000000000", name="x")

    with pytest.raises(KeyNotFound):
        on_store(scenario)


def test_a_second_store_on_the_same_database_sees_the_keys(
    new_store: Callable[[], KeyStore], on_store: Run
) -> None:
    async def scenario(store: KeyStore) -> tuple[str, str | None]:
        record, secret = await store.create(KeySpec(name="k"))
        other = new_store()
        try:
            found = await other.find_by_secret(secret)
        finally:
            await other.aclose()
        return record.key_id, found.key_id if found else None

    key_id, found = on_store(scenario)
    assert found == key_id
