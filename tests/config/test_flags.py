"""Flags: `flag:NAME` anywhere in the config takes the flag's value at load; a reference
to an unknown flag, or a flag of a kind its setting can't take, is refused naming both."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.config import ConfigError, parse_config


def config_with(flags: Any, model: str = "flag:fast", **extra: Any) -> dict[str, Any]:
    return {
        "flags": flags,
        "providers": {"sim": {"type": "simulator"}},
        "models": {"fast": {"deployments": [{"provider": "sim", "model": model}]}},
        **extra,
    }


def test_a_reference_takes_the_flags_value_and_the_flags_are_kept() -> None:
    config = parse_config(
        config_with(
            {"fast": "claude-haiku-4-5", "cache_ttl": 30, "strict": True},
            models={
                "fast": {
                    "deployments": [{"provider": "sim", "model": "flag:fast"}],
                    "cache": {"ttl_seconds": "flag:cache_ttl"},
                }
            },
            keys={"required": "flag:strict"},
        )
    )
    assert config.models["fast"].deployments[0].model == "claude-haiku-4-5"
    assert config.models["fast"].cache.ttl_seconds == 30
    assert config.keys.required is True
    assert config.flags == {"fast": "claude-haiku-4-5", "cache_ttl": 30, "strict": True}


def test_an_unknown_flag_is_refused_naming_the_setting_and_the_flag() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config_with({"other": "x"}, model="flag:fast"))
    assert str(refused.value) == (
        "config: $.models.fast.deployments[0].model: unknown flag 'fast'; defined flags: other"
    )


def test_a_flag_of_the_wrong_kind_for_its_setting_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"at `\$\.models\.fast\.deployments\[0\]\.model`"):
        parse_config(config_with({"fast": True}))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"fast": ["a"]}, "$.flags.fast: expected a boolean, a number or a string, got list"),
        ({"fast": None}, "$.flags.fast: expected a boolean, a number or a string"),
        ({"fast": "flag:other", "other": "x"}, "$.flags.fast: a flag can't refer to another"),
        ({"no spaces": "x"}, "$.flags: 'no spaces' is not a flag name"),
        (["fast"], "$.flags: expected a mapping of flag names to values"),
    ],
)
def test_flags_themselves_are_checked(flags: Any, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config_with(flags, model="claude-haiku-4-5"))
    assert message in str(refused.value)
