"""Model lifecycle through the official SDKs: a deprecated model's answers carry the
Deprecation, Sunset and replacement headers; a retired one is refused before any upstream
(404 in the client's format, naming the date and the replacement), remapped to its
replacement, or relayed, per route or gateway-wide. Every date is relative to today, set
by catalog overrides, so the tests never go stale."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.observability.test_call_accounting import metric
from tests.observability.test_call_ledger import read_sqlite
from tests.stages.test_keys_limits_budgets import HI, claude, gpt
from tests.support import IN_PROCESS_CONFIG, serve_gateway

from tollhouse.config import ConfigError, parse_config
from tollhouse.server.runner import BackgroundServer

OPEN = "unused"  # the gateway requires no keys

TODAY = datetime.now(UTC).date()


def entry(model_id: str, provider: str, **lifecycle: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "provider": provider,
        "display_name": model_id,
        "context_window": 200000,
        "max_output_tokens": 8192,
        "released": (TODAY - timedelta(days=400)).isoformat(),
        "pricing": {"input": "1", "output": "5"},
        "lifecycle": lifecycle,
    }


def dated(days: int) -> str:
    return (TODAY + timedelta(days=days)).isoformat()


def catalog(**lifecycle: Any) -> dict[str, Any]:
    """`old-claude` and `old-gpt` with `lifecycle`, their successors `next-claude` and
    `next-gpt` active."""
    return {
        "models": [
            entry("old-claude", "anthropic", replacement="next-claude", **lifecycle),
            entry("old-gpt", "openai", replacement="next-gpt", **lifecycle),
            entry("next-claude", "anthropic"),
            entry("next-gpt", "openai"),
        ]
    }


DEPRECATED = catalog(state="active", deprecated_on=dated(-10), retires_on=dated(30))
# Listed as deprecated, but its retirement day has come: the date decides.
RETIRED = catalog(state="deprecated", deprecated_on=dated(-90), retires_on=dated(-1))


def routes(**route: Any) -> dict[str, Any]:
    # `next-claude` is served by a route of its own; `next-gpt` is not, so a remap of
    # `old-gpt` goes to the same deployment with the successor's id.
    return {
        "old-claude": {"deployments": [{"provider": "sim-anthropic", "model": "old-claude"}]}
        | route,
        "next-claude": {"deployments": [{"provider": "sim-anthropic", "model": "next-claude"}]},
        "old-gpt": {"deployments": [{"provider": "sim-openai", "model": "old-gpt"}]} | route,
    }


def gateway(tmp_path: Path, lifecycle_catalog: dict[str, Any], **sections: Any) -> BackgroundServer:
    config = {
        **IN_PROCESS_CONFIG,
        "models": sections.pop("models", routes()),
        "catalog": lifecycle_catalog,
        "ledger": {"sqlite_path": str(tmp_path / "ledger.db"), "spill_path": None},
        "lifecycle": {"retired": "refuse"},
        **sections,
    }
    return serve_gateway(config)


def unix_midnight(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp())


def http_date(day: str) -> str:
    return format_datetime(
        datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC), usegmt=True
    )


# ------------------------------------------------------------------------------ deprecated


def test_a_deprecated_model_answers_with_deprecation_sunset_and_replacement_headers(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, DEPRECATED)
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="old-claude", max_tokens=20, messages=HI
        )
        raw.parse()
        raw_gpt = gpt(server.url, OPEN).chat.completions.with_raw_response.create(
            model="old-gpt", messages=HI
        )
        raw_gpt.parse()
        counted = metric(
            server.url,
            "tollhouse_lifecycle_calls_total",
            model="old-claude",
            state="deprecated",
            action="notice",
        )
    finally:
        server.stop()
    for headers in (raw.headers, raw_gpt.headers):
        assert headers["deprecation"] == f"@{unix_midnight(dated(-10))}"
        assert headers["sunset"] == http_date(dated(30))
    assert raw.headers["x-tollhouse-model-replacement"] == "next-claude"
    assert raw_gpt.headers["x-tollhouse-model-replacement"] == "next-gpt"
    assert counted == 1
    first, second = read_sqlite(tmp_path / "ledger.db")
    assert first.status == 200
    assert first.metadata["lifecycle"] == {
        "model": "old-claude",
        "state": "deprecated",
        "action": "notice",
        "retires_on": dated(30),
        "replacement": "next-claude",
    }
    assert second.metadata["lifecycle"]["model"] == "old-gpt"


def test_a_deprecated_model_is_logged_once_a_minute_per_route(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = gateway(tmp_path, DEPRECATED)
    try:
        client = claude(server.url, OPEN)
        with caplog.at_level("WARNING", logger="tollhouse.lifecycle"):
            for _ in range(3):
                client.messages.create(model="old-claude", max_tokens=5, messages=HI)
    finally:
        server.stop()
    lines = [r for r in caplog.records if r.getMessage().startswith("deprecated_model_called")]
    assert len(lines) == 1
    fields = lines[0].tollhouse  # type: ignore[attr-defined]
    assert fields["route"] == "old-claude"
    assert fields["days_left"] == 30
    assert fields["replacement"] == "next-claude"


def test_a_model_in_good_standing_carries_no_lifecycle_headers(tmp_path: Path) -> None:
    server = gateway(tmp_path, DEPRECATED)
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="next-claude", max_tokens=5, messages=HI
        )
    finally:
        server.stop()
    assert "deprecation" not in raw.headers
    assert "sunset" not in raw.headers
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert "lifecycle" not in record.metadata


# --------------------------------------------------------------------------------- retired


def test_a_retired_model_is_refused_before_any_upstream_in_the_anthropic_format(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, RETIRED)
    try:
        with pytest.raises(anthropic.NotFoundError) as caught:
            claude(server.url, OPEN).messages.create(model="old-claude", max_tokens=5, messages=HI)
    finally:
        server.stop()
    error = caught.value
    assert error.status_code == 404
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == "not_found_error"
    message = error.body["error"]["message"]
    assert f"retired on {dated(-1)}" in message
    assert "'next-claude'" in message
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.status == 404
    assert record.attempts == 0
    assert record.provider is None
    assert record.metadata["lifecycle"]["action"] == "refuse"


def test_a_retired_model_is_refused_with_model_not_found_in_the_openai_format(
    tmp_path: Path,
) -> None:
    server = gateway(tmp_path, RETIRED)
    try:
        with pytest.raises(openai.NotFoundError) as caught:
            gpt(server.url, OPEN).chat.completions.create(model="old-gpt", messages=HI)
    finally:
        server.stop()
    assert caught.value.code == "model_not_found"
    assert f"retired on {dated(-1)}" in caught.value.message
    assert "'next-gpt'" in caught.value.message


def test_a_route_set_to_remap_sends_a_retired_model_to_its_replacement(tmp_path: Path) -> None:
    server = gateway(tmp_path, RETIRED, models=routes(lifecycle={"retired": "remap"}))
    try:
        raw = claude(server.url, OPEN).messages.with_raw_response.create(
            model="old-claude", max_tokens=5, messages=HI
        )
        answer = raw.parse()
        raw_gpt = gpt(server.url, OPEN).chat.completions.with_raw_response.create(
            model="old-gpt", messages=HI
        )
        raw_gpt.parse()
    finally:
        server.stop()
    assert answer.model == "next-claude"
    assert raw.headers["x-tollhouse-model-remapped"] == "old-claude -> next-claude"
    assert raw_gpt.headers["x-tollhouse-model-remapped"] == "old-gpt -> next-gpt"
    assert raw.headers["sunset"] == http_date(dated(-1))
    claude_record, gpt_record = read_sqlite(tmp_path / "ledger.db")
    assert claude_record.model_served == "next-claude"
    assert claude_record.metadata["lifecycle"]["remapped_to"] == "next-claude"
    # `next-gpt` has no route: the same deployment is asked for the successor's id.
    assert gpt_record.model_served == "next-gpt"
    assert gpt_record.provider == "sim-openai"


def test_remap_without_a_living_replacement_refuses_and_says_why(tmp_path: Path) -> None:
    lifecycle = {"state": "retired", "retires_on": dated(-5)}
    retired_chain = {
        "models": [
            entry("old-claude", "anthropic", replacement="next-claude", **lifecycle),
            entry("next-claude", "anthropic", **lifecycle),
        ]
    }
    server = gateway(tmp_path, retired_chain, lifecycle={"retired": "remap"}, models=routes())
    try:
        with pytest.raises(anthropic.NotFoundError) as caught:
            claude(server.url, OPEN).messages.create(model="old-claude", max_tokens=5, messages=HI)
    finally:
        server.stop()
    assert "its replacement 'next-claude' has retired too" in caught.value.message


def test_allow_relays_a_retired_model_with_its_sunset_stated(tmp_path: Path) -> None:
    server = gateway(tmp_path, RETIRED, lifecycle={"retired": "allow"})
    try:
        raw = gpt(server.url, OPEN).chat.completions.with_raw_response.create(
            model="old-gpt", messages=HI
        )
        answer = raw.parse()
    finally:
        server.stop()
    assert answer.model == "old-gpt"
    assert raw.headers["sunset"] == http_date(dated(-1))
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.metadata["lifecycle"]["action"] == "allow"


def test_a_route_setting_overrides_the_gateway_wide_one(tmp_path: Path) -> None:
    models = routes()
    models["old-claude"]["lifecycle"] = {"retired": "allow"}
    server = gateway(tmp_path, RETIRED, lifecycle={"retired": "refuse"}, models=models)
    try:
        claude(server.url, OPEN).messages.create(model="old-claude", max_tokens=5, messages=HI)
        with pytest.raises(openai.NotFoundError):
            gpt(server.url, OPEN).chat.completions.create(model="old-gpt", messages=HI)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"lifecycle": {"retired": "later"}}, "$.lifecycle.retired"),
        (
            {"models": {"m": {"deployments": [], "lifecycle": {"retired": "skip"}}}},
            "$.models.m.lifecycle.retired",
        ),
    ],
)
def test_a_bad_lifecycle_setting_is_refused_naming_the_key(
    section: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConfigError, match=where.replace("$", r"\$")):
        parse_config(section)


def test_retired_models_are_refused_unless_the_config_says_otherwise() -> None:
    config = parse_config({})

    assert config.lifecycle.retired == "refuse"


# ------------------------------------------------------------------ fallbacks, the listing


def falling_back(tmp_path: Path, **section: Any) -> BackgroundServer:
    """Route `chain`: a first deployment that fails every call, then `old-claude` (retired
    in RETIRED), then `next-claude`."""
    providers = {
        **IN_PROCESS_CONFIG["providers"],
        "sim-down": {"type": "simulator", "simulator": {"format": "anthropic", "faults": ["503"]}},
    }
    chain = {
        "deployments": [
            {"provider": "sim-down", "model": "next-claude"},
            {"provider": "sim-anthropic", "model": "old-claude"},
            {"provider": "sim-openai", "model": "next-gpt"},
        ]
    }
    return gateway(tmp_path, RETIRED, providers=providers, models={"chain": chain}, **section)


def test_a_retired_fallback_deployment_is_skipped_when_retired_models_are_refused(
    tmp_path: Path,
) -> None:
    server = falling_back(tmp_path)
    try:
        answer = claude(server.url, OPEN).messages.create(model="chain", max_tokens=5, messages=HI)
    finally:
        server.stop()
    assert answer.content
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.model_served == "next-gpt"  # old-claude, next in the chain, was never asked
    assert record.provider == "sim-openai"
    assert record.metadata["served_by"] == "sim-openai/next-gpt"
    assert all("old-claude" not in failure for failure in record.metadata["failures"])
    assert "lifecycle" not in record.metadata  # the route's own model is in good standing


def test_a_retired_fallback_deployment_is_remapped_to_its_successor_on_the_same_provider(
    tmp_path: Path,
) -> None:
    server = falling_back(tmp_path, lifecycle={"retired": "remap"})
    try:
        answer = claude(server.url, OPEN).messages.create(model="chain", max_tokens=5, messages=HI)
    finally:
        server.stop()
    assert answer.model == "next-claude"
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.model_served == "next-claude"
    assert record.provider == "sim-anthropic"


def test_a_retired_fallback_deployment_is_kept_when_retired_models_are_allowed(
    tmp_path: Path,
) -> None:
    server = falling_back(tmp_path, lifecycle={"retired": "allow"})
    try:
        answer = gpt(server.url, OPEN).chat.completions.create(model="chain", messages=HI)
    finally:
        server.stop()
    assert answer.choices
    (record,) = read_sqlite(tmp_path / "ledger.db")
    assert record.model_served == "old-claude"
    assert record.provider == "sim-anthropic"


def test_the_model_list_leaves_out_routes_whose_retired_model_is_refused(tmp_path: Path) -> None:
    models = routes()
    models["old-gpt"]["lifecycle"] = {"retired": "remap"}  # still answers: listed
    server = gateway(tmp_path, RETIRED, models=models)
    try:
        listed_openai = [model.id for model in gpt(server.url, OPEN).models.list()]
        listed_anthropic = [model.id for model in claude(server.url, OPEN).models.list()]
        with pytest.raises(openai.NotFoundError) as caught:
            gpt(server.url, OPEN).models.retrieve("old-claude")
        with pytest.raises(anthropic.NotFoundError):
            claude(server.url, OPEN).models.retrieve("old-claude")
        kept = gpt(server.url, OPEN).models.retrieve("old-gpt")
    finally:
        server.stop()
    assert listed_openai == ["next-claude", "old-gpt"]
    assert listed_anthropic == ["next-claude", "old-gpt"]
    assert f"retired on {dated(-1)}" in caught.value.message
    assert kept.id == "old-gpt"
