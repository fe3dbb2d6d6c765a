"""The shipped catalog's data and the rules every catalog, shipped or overridden, obeys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import msgspec
import pytest
import yaml

from tollhouse.catalog.models import (
    CatalogError,
    CatalogModel,
    CatalogOverrides,
    Lifecycle,
    ModelCatalog,
    Pricing,
    load_catalog,
    merge_catalog,
    parse_catalog,
)

PRICE_FIELDS = (
    "input",
    "output",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "batch_input",
    "batch_output",
)


def raw_entries() -> list[dict[str, Any]]:
    text = resources.files("tollhouse.catalog").joinpath("models.yaml").read_text()
    entries: list[dict[str, Any]] = yaml.safe_load(text)["models"]
    return entries


def model(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "local-model",
        "provider": "openai",
        "display_name": "Local model",
        "context_window": 8192,
        "max_output_tokens": 1024,
        "released": "2026-01-01",
    }
    return {**base, **fields}


# --------------------------------------------------------------------- the shipped data


@pytest.mark.parametrize("entry", raw_entries(), ids=lambda entry: entry["id"])
def test_every_entry_parses_on_its_own(entry: dict[str, Any]) -> None:
    parsed = msgspec.convert(entry, CatalogModel)

    assert parsed.id == entry["id"]


def test_the_shipped_catalog_loads() -> None:
    assert len(load_catalog().models) == len(raw_entries())


def test_no_name_is_claimed_by_two_entries() -> None:
    names = [name for entry in load_catalog().models for name in (entry.id, *entry.aliases)]

    assert len(names) == len(set(names))


def test_every_entry_has_a_price_card_with_its_source_and_date() -> None:
    for entry in load_catalog().models:
        assert entry.pricing is not None, entry.id
        assert entry.price_source is not None, entry.id
        assert entry.price_source.startswith("https://"), entry.id
        assert entry.price_as_of is not None, entry.id


def test_every_entry_publishes_standard_and_batch_rates() -> None:
    for entry in load_catalog().models:
        assert entry.pricing is not None
        assert entry.pricing.batch_input is not None, entry.id
        if entry.max_output_tokens > 0:  # embedding models have no prompt cache
            assert entry.pricing.cache_read is not None, entry.id


def test_every_claude_entry_prices_both_cache_write_retentions() -> None:
    for entry in load_catalog().models:
        if entry.provider == "anthropic":
            assert entry.pricing is not None
            assert entry.pricing.cache_write_5m is not None, entry.id
            assert entry.pricing.cache_write_1h is not None, entry.id


def test_every_price_in_the_data_file_is_a_string_so_no_float_touches_it() -> None:
    for entry in raw_entries():
        card = entry["pricing"]
        tiers = [card, card.get("long_context") or {}]
        for tier in tiers:
            for name in PRICE_FIELDS:
                assert tier.get(name) is None or isinstance(tier[name], str), (entry["id"], name)


def test_lifecycle_dates_follow_release_deprecation_retirement_order() -> None:
    for entry in load_catalog().models:
        released = date.fromisoformat(entry.released)
        dates = [released, entry.lifecycle.deprecated_on, entry.lifecycle.retires_on]
        known = [day for day in dates if day is not None]
        assert known == sorted(known), entry.id


def test_lifecycle_state_agrees_with_its_dates_on_the_day_prices_were_read() -> None:
    for entry in load_catalog().models:
        lifecycle, read_on = entry.lifecycle, entry.price_as_of
        assert read_on is not None
        if lifecycle.state == "retired":
            assert lifecycle.retires_on is not None, entry.id
            assert lifecycle.retires_on <= read_on, entry.id
        elif lifecycle.state == "deprecated":
            assert lifecycle.retires_on is not None, entry.id
            assert lifecycle.retires_on > read_on, entry.id
        else:
            assert lifecycle.retires_on is None, entry.id


def test_a_dated_claude_id_is_found_by_its_alias() -> None:
    entry = load_catalog().get("claude-haiku-4-5")

    assert entry is not None
    assert entry.id == "claude-haiku-4-5-20251001"


def test_an_openai_snapshot_name_finds_its_model() -> None:
    entry = load_catalog().get("gpt-4o-mini-2024-07-18")

    assert entry is not None
    assert entry.id == "gpt-4o-mini"


def test_an_unknown_name_finds_nothing() -> None:
    assert load_catalog().get("claude-nonexistent") is None


def test_long_context_tiers_price_every_token_type_of_their_base_card() -> None:
    for entry in load_catalog().models:
        card = entry.pricing
        if card is None or card.long_context is None:
            continue
        for name in ("cache_write_5m", "cache_write_1h", "cache_read"):
            if getattr(card, name) is not None:
                assert getattr(card.long_context, name) is not None, (entry.id, name)


# ------------------------------------------------------------------- validation rules


def test_a_negative_price_is_refused_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match="`cache_read` must be a price >= 0"):
        msgspec.convert({"input": "1", "output": "5", "cache_read": "-0.1"}, Pricing)


def test_a_price_that_is_not_a_number_is_refused_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.output"):
        msgspec.convert({"input": "1", "output": "five"}, Pricing)


def test_a_batch_price_above_the_standard_price_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="`batch_input` is a discount"):
        msgspec.convert(
            {"input": "1", "output": "5", "batch_input": "2", "batch_output": "2.5"}, Pricing
        )


def test_a_long_context_tier_that_leaves_cache_reads_unpriced_is_refused() -> None:
    card = {
        "input": "3",
        "output": "15",
        "cache_read": "0.30",
        "long_context": {"threshold_tokens": 200000, "input": "6", "output": "22.50"},
    }

    with pytest.raises(msgspec.ValidationError, match=r"`long_context\.cache_read` is required"):
        msgspec.convert(card, Pricing)


def test_a_deprecation_after_the_retirement_is_refused() -> None:
    dates = {"state": "retired", "deprecated_on": "2026-07-01", "retires_on": "2026-06-01"}

    with pytest.raises(msgspec.ValidationError, match="`deprecated_on`"):
        msgspec.convert(dates, Lifecycle)


def test_a_retired_model_without_a_retirement_date_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="`retires_on` is required"):
        msgspec.convert({"state": "retired"}, Lifecycle)


def test_a_retirement_before_the_release_is_refused() -> None:
    entry = model(lifecycle={"state": "retired", "retires_on": "2025-12-01"})

    with pytest.raises(msgspec.ValidationError, match="before `released`"):
        msgspec.convert(entry, CatalogModel)


def test_an_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(CatalogError, match="unknown field `colour`"):
        parse_catalog({"models": [model(colour="blue")]})


def test_two_entries_claiming_one_alias_are_refused_naming_both() -> None:
    first = msgspec.convert(model(id="a", aliases=["shared"]), CatalogModel)
    second = msgspec.convert(model(id="b", aliases=["shared"]), CatalogModel)

    with pytest.raises(CatalogError, match="'shared' is already used by a"):
        ModelCatalog([first, second])


# -------------------------------------------------------------------------- overrides


def test_a_negotiated_price_replaces_the_card_and_its_list_price_source() -> None:
    negotiated = {"input": "2.40", "output": "12", "cache_read": "0.24"}

    merged = merge_catalog(load_catalog(), [{"id": "claude-sonnet-4-6", "pricing": negotiated}])

    entry = merged.get("claude-sonnet-4-6")
    assert entry is not None
    assert entry.pricing is not None
    assert entry.pricing.input == Decimal("2.40")
    assert entry.pricing.batch_input is None
    assert entry.price_source is None
    assert entry.display_name == "Claude Sonnet 4.6"


def test_an_override_keeps_the_source_it_names() -> None:
    override = {
        "id": "gpt-5.2",
        "pricing": {"input": "1.50", "output": "12"},
        "price_source": "https://contracts.example/acme-2026",
        "price_as_of": "2026-11-01",
    }

    entry = merge_catalog(load_catalog(), [override]).get("gpt-5.2")

    assert entry is not None
    assert entry.price_source == "https://contracts.example/acme-2026"
    assert entry.price_as_of == date(2026, 11, 1)


def test_an_override_may_name_the_model_by_its_alias() -> None:
    merged = merge_catalog(load_catalog(), [{"id": "claude-haiku-4-5", "display_name": "Haiku"}])

    entry = merged.get("claude-haiku-4-5-20251001")
    assert entry is not None
    assert entry.display_name == "Haiku"
    assert entry.id == "claude-haiku-4-5-20251001"


def test_an_override_adds_a_self_hosted_model_at_no_cost() -> None:
    local = model(id="llama-local", pricing={"input": "0", "output": "0"})

    merged = merge_catalog(load_catalog(), [local])

    entry = merged.get("llama-local")
    assert entry is not None
    assert entry.pricing is not None
    assert entry.pricing.output == Decimal(0)
    assert len(merged.models) == len(load_catalog().models) + 1


def test_an_override_leaves_the_base_catalog_untouched() -> None:
    base = load_catalog()

    merge_catalog(base, [{"id": "gpt-5.2", "display_name": "Renamed"}])

    entry = base.get("gpt-5.2")
    assert entry is not None
    assert entry.display_name == "GPT-5.2"


def test_a_bad_override_price_is_refused_naming_the_override_and_field() -> None:
    bad = {"id": "gpt-5.2", "pricing": {"input": "-1", "output": "14"}}

    with pytest.raises(CatalogError, match=r"overrides\[0\] \(gpt-5.2\).*`input`.*\$\.pricing"):
        merge_catalog(load_catalog(), [bad])


def test_an_override_with_an_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(CatalogError, match=r"overrides\[1\].*unknown field `prize`"):
        merge_catalog(load_catalog(), [{"id": "o3"}, {"id": "gpt-5.2", "prize": "1"}])


def test_an_incomplete_new_model_is_refused_naming_the_missing_field() -> None:
    with pytest.raises(CatalogError, match=r"overrides\[0\] \(mystery\).*missing required field"):
        merge_catalog(load_catalog(), [{"id": "mystery", "provider": "openai"}])


def test_an_override_without_an_id_is_refused() -> None:
    with pytest.raises(CatalogError, match=r"overrides\[0\]\.id: required"):
        merge_catalog(load_catalog(), [{"display_name": "Nameless"}])


def test_an_override_alias_already_naming_another_model_is_refused() -> None:
    clash = {"id": "gpt-5.2", "aliases": ["gpt-4o"]}

    with pytest.raises(
        CatalogError, match=r"overrides\[0\]\.aliases: 'gpt-4o' already names gpt-4o"
    ):
        merge_catalog(load_catalog(), [clash])


def test_catalog_overrides_from_a_config_apply_over_the_shipped_catalog() -> None:
    section = msgspec.convert(
        {"models": [{"id": "o3", "display_name": "o3 (EU)"}]}, CatalogOverrides
    )

    entry = section.apply(load_catalog()).get("o3")

    assert entry is not None
    assert entry.display_name == "o3 (EU)"


# ------------------------------------------------------------- the state the dates decide


def test_a_model_past_its_retirement_date_is_retired_whatever_its_listed_state() -> None:
    lifecycle = Lifecycle(state="deprecated", retires_on=date(2026, 3, 1))

    assert lifecycle.effective_state(date(2026, 2, 28)) == "deprecated"
    assert lifecycle.effective_state(date(2026, 3, 1)) == "retired"


def test_an_active_model_past_its_deprecation_date_is_deprecated() -> None:
    lifecycle = Lifecycle(
        state="active", deprecated_on=date(2026, 1, 10), retires_on=date(2026, 4, 10)
    )

    assert lifecycle.effective_state(date(2026, 1, 9)) == "active"
    assert lifecycle.effective_state(date(2026, 1, 10)) == "deprecated"
    assert lifecycle.effective_state(date(2026, 4, 10)) == "retired"


def test_a_listed_retired_state_stays_retired_before_its_date() -> None:
    lifecycle = Lifecycle(state="retired", retires_on=date(2026, 6, 1))

    assert lifecycle.effective_state(date(2026, 5, 1)) == "retired"


def test_every_shipped_replacement_names_an_unretired_model_of_the_same_provider() -> None:
    catalog = load_catalog()
    named = [entry for entry in catalog.models if entry.lifecycle.replacement]
    assert named
    for entry in named:
        successor = catalog.get(entry.lifecycle.replacement or "")
        assert successor is not None, entry.id
        assert successor.provider == entry.provider, entry.id
        assert successor.lifecycle.state in ("active", "legacy"), entry.id


def test_a_replacement_naming_no_catalog_model_is_refused_naming_the_field() -> None:
    overrides = [{"id": "o3", "lifecycle": {"state": "legacy", "replacement": "o9-unknown"}}]

    with pytest.raises(CatalogError, match=r"o3\).lifecycle.replacement: 'o9-unknown'"):
        merge_catalog(load_catalog(), overrides)


def test_a_model_may_not_be_its_own_replacement() -> None:
    overrides = [{"id": "o3", "lifecycle": {"state": "legacy", "replacement": "o3-2025-04-16"}}]

    with pytest.raises(CatalogError, match="is the model itself"):
        merge_catalog(load_catalog(), overrides)


def test_a_config_override_sets_a_replacement() -> None:
    section = msgspec.convert(
        {
            "models": [
                {
                    "id": "gpt-4o",
                    "lifecycle": {
                        "state": "deprecated",
                        "retires_on": "2027-01-14",
                        "replacement": "gpt-5.4",
                    },
                }
            ]
        },
        CatalogOverrides,
    )

    entry = section.apply(load_catalog()).get("gpt-4o")

    assert entry is not None
    assert entry.lifecycle.replacement == "gpt-5.4"


def test_every_shipped_entry_says_whether_its_price_source_is_the_providers_own() -> None:
    models = load_catalog().models
    assert all(entry.source in ("provider", "secondary") for entry in models)
    secondary = {entry.id for entry in models if entry.source == "secondary"}
    assert secondary == {"claude-fable-5-2", "claude-sonnet-5-5", "gpt-6.2-astra"}


def test_a_provider_source_must_be_a_page_of_the_providers_sites() -> None:
    with pytest.raises(CatalogError, match="`source` is provider"):
        merge_catalog(
            load_catalog(),
            [{"id": "gpt-4o", "price_source": "https://example.com/prices", "source": "provider"}],
        )
