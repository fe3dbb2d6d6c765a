"""Input guardrail settings are checked at load, each error naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.config import ConfigError, parse_config

PROVIDERS = {
    "claude": {"type": "simulator", "simulator": {"format": "anthropic"}},
    "gpt": {"type": "simulator", "simulator": {"format": "openai"}},
}


def config_with(guardrails: dict[str, Any], listed: list[str] | None = None) -> dict[str, Any]:
    route = {"deployments": [{"provider": "claude", "model": "claude-haiku-4-5"}]}
    return {
        "providers": PROVIDERS,
        "input_guardrails": guardrails,
        "models": {"chat": {**route, "input_guardrails": listed or list(guardrails)}},
    }


@pytest.mark.parametrize(
    ("guardrails", "listed", "error"),
    [
        ({}, ["nope"], r"\$\.models\.chat\.input_guardrails\[0\]: unknown guardrail 'nope'"),
        (
            {"p": {"kind": "pattern", "patterns": {"key": "sk-("}}},
            None,
            r"\$\.input_guardrails\.p\.patterns\.key: not a regular expression",
        ),
        (
            {"p": {"kind": "pattern", "patterns": {"any": "x*"}}},
            None,
            r"\$\.input_guardrails\.p\.patterns\.any: matches the empty string",
        ),
        ({"p": {"kind": "pattern", "patterns": {}}}, None, r"\.patterns: at least one"),
        ({"d": {"kind": "deny_list", "terms": [" "]}}, None, r"\$\.input_guardrails\.d\.terms"),
        (
            {"m": {"kind": "moderation", "provider": "claude"}},
            None,
            r"\$\.input_guardrails\.m\.provider: 'claude' does not speak the OpenAI format",
        ),
        (
            {"m": {"kind": "moderation", "provider": "none"}},
            None,
            r"\$\.input_guardrails\.m\.provider: unknown provider 'none'",
        ),
        (
            {"m": {"kind": "moderation", "provider": "gpt", "action": "redact"}},
            None,
            r"Invalid enum value 'redact' - at `\$\.input_guardrails\.m\.action`",
        ),
        (
            {"m": {"kind": "moderation", "provider": "gpt", "on_error": "maybe"}},
            None,
            r"`\$\.input_guardrails\.m\.on_error`",
        ),
        ({"x": {"kind": "telepathy"}}, None, r"`\$\.input_guardrails\.x\.kind`"),
        ({"l": {"kind": "language", "allowed": []}}, None, r"\.allowed: at least one language"),
        (
            {"bad name!": {"kind": "max_length", "max_chars": 5}},
            None,
            r"\$\.input_guardrails\.bad name!: a name of letters",
        ),
        (
            {"n": {"kind": "max_length", "max_chars": 5}},
            ["n", "n"],
            r"\$\.models\.chat\.input_guardrails: a guardrail is listed twice",
        ),
    ],
)
def test_a_bad_guardrail_setting_is_refused_naming_its_key(
    guardrails: dict[str, Any], listed: list[str] | None, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_config(config_with(guardrails, listed))


def test_untrusted_content_settings_are_checked_by_key() -> None:
    config = config_with({})
    config["models"]["chat"]["untrusted"] = {"injection": "shout"}
    with pytest.raises(ConfigError, match=r"`\$\.models\.chat\.untrusted\.injection`"):
        parse_config(config)


def test_a_route_without_guardrails_or_untrusted_content_has_none() -> None:
    config = parse_config(
        {
            "providers": PROVIDERS,
            "models": {"chat": {"deployments": [{"provider": "claude", "model": "m"}]}},
        }
    )
    route = config.models["chat"]
    assert (route.input_guardrails, route.untrusted) == ((), None)
