"""Configuration is validated once at start, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollhouse.config import ConfigError, default_config, load_config, parse_config
from tollhouse.config.secrets import SecretError, resolve_secret
from tollhouse.gateway import Gateway

VALID = {
    "providers": {"a": {"type": "anthropic", "api_key": "env:TH_TEST_KEY"}},
    "models": {"m": {"deployments": [{"provider": "a", "model": "claude-haiku-4-5"}]}},
}


def test_yaml_and_toml_files_load_to_the_same_config(tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "providers:\n  a: {type: anthropic, api_key: 'env:TH_TEST_KEY'}\n"
        "models:\n  m:\n    deployments: [{provider: a, model: claude-haiku-4-5}]\n"
    )
    toml_file = tmp_path / "c.toml"
    toml_file.write_text(
        '[providers.a]\ntype = "anthropic"\napi_key = "env:TH_TEST_KEY"\n'
        '[[models.m.deployments]]\nprovider = "a"\nmodel = "claude-haiku-4-5"\n'
    )
    assert load_config(yaml_file) == load_config(toml_file) == parse_config(VALID)


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"providers": {"a": {"type": "anthropix"}}}, "$.providers.a.type"),
        (
            {"providers": {"a": {"type": "anthropic", "api_key": "sk-live-123"}}},
            "never written inline",
        ),
        ({"providers": {"a": {"type": "openai-compatible"}}}, "base_url: required"),
        (
            {"models": {"m": {"deployments": [{"provider": "zz", "model": "x"}]}}},
            "unknown provider 'zz'",
        ),
        ({"models": {"m": {"deployments": []}}}, "at least one"),
        ({"server": {"port": "eighty"}}, "$.server.port"),
        ({"surprise": 1}, "surprise"),
        (
            {
                "providers": {"a": {"type": "simulator"}},
                "models": {
                    "m": {
                        "deployments": [{"provider": "a", "model": "x"}],
                        "truncation": {"mode": "retry_larger", "max_tokens_cap": 8000},
                        "input_limits": {"max_tokens_cap": 4000},
                    }
                },
            },
            "$.models.m.truncation.max_tokens_cap: 8000 is above "
            "$.models.m.input_limits.max_tokens_cap (4000)",
        ),
        (
            {
                "providers": {"a": {"type": "simulator"}},
                "limits": {"input": {"max_tokens_cap": 1000}},
                "models": {
                    "m": {
                        "deployments": [{"provider": "a", "model": "x"}],
                        "truncation": {"mode": "retry_larger"},
                    }
                },
            },
            "16384 is above $.limits.input.max_tokens_cap (1000)",
        ),
    ],
)
def test_invalid_configs_name_the_key(patch: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**VALID, **patch})
    assert fragment in str(caught.value)


def test_inline_secret_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {**VALID, "providers": {"a": {"type": "anthropic", "api_key": "sk-live-SECRET"}}}
        )
    assert "sk-live-SECRET" not in str(caught.value)


def test_secrets_resolve_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TH_TEST_KEY", "from-env")
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    assert resolve_secret("env:TH_TEST_KEY", key_path="k") == "from-env"
    assert resolve_secret(f"file:{secret_file}", key_path="k") == "from-file"
    with pytest.raises(SecretError, match="TH_MISSING"):
        resolve_secret("env:TH_MISSING", key_path="k")


def test_a_missing_provider_key_stops_the_gateway_with_the_key_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TH_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$\.providers\.a\.api_key"):
        Gateway(parse_config(VALID))


def test_defaults_use_the_simulator_without_provider_keys() -> None:
    config = default_config({})
    assert {p.type for p in config.providers.values()} == {"simulator"}
    assert "claude-haiku-4-5" in config.models
    assert "gpt-5.4-mini" in config.models


def test_defaults_leave_out_a_model_whose_retirement_date_has_passed() -> None:
    # Listed as deprecated in the shipped catalog, but its retires_on (2026-11-30) is past.
    config = default_config({})
    assert "claude-sonnet-4-5" not in config.models
    assert "claude-sonnet-4-5-20250929" not in config.models


def test_defaults_use_real_providers_when_keys_are_present() -> None:
    config = default_config({"ANTHROPIC_API_KEY": "x", "OPENAI_API_KEY": "y"})
    assert {p.type for p in config.providers.values()} == {"anthropic", "openai"}
    assert config.models["claude-haiku-4-5"].deployments[0].provider == "anthropic"
    assert all(p.api_key and p.api_key.startswith("env:") for p in config.providers.values())


def test_the_word_off_in_yaml_means_off_not_false(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ledger:\n  backend: off\n  text: off\nlogging:\n  call_log: off\n")
    config = load_config(path)
    assert (config.ledger.backend, config.ledger.text) == ("off", "off")
    assert config.logging.call_log == "off"


@pytest.mark.parametrize("section", ["ledger", "keys"])
def test_a_postgres_store_needs_its_connection_string_by_reference(section: str) -> None:
    with pytest.raises(ConfigError, match=rf"\$\.{section}\.postgres: required"):
        parse_config({section: {"backend": "postgres"}})
    with pytest.raises(ConfigError, match=rf"\$\.{section}\.postgres: expected a secret reference"):
        parse_config({section: {"backend": "postgres", "postgres": "host=db password=x"}})
