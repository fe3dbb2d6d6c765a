"""Flags: named values in the config (`flags:`) that other settings refer to by name.

    flags:
      support_model: claude-sonnet-4-5
      cautious: true
    models:
      support:
        deployments: [{provider: anthropic, model: "flag:support_model"}]

A setting whose whole value is the string `flag:NAME` takes that flag's value when the
config loads, so one flag can switch a model, a prompt or a policy everywhere it is named,
and `tollhouse flags set NAME VALUE` (or `PUT /admin/config/flags/NAME`) is a new config
version that changes only `flags:`. A flag is a boolean, a number or a string; a
reference to a flag the config does not define is refused naming the setting and the
flag. References are resolved in the document before it is validated, so a flag's value
is checked like any value written in its place (a boolean where a string is expected is
refused naming the setting). The stored version keeps `flag:NAME` as written.
"""

from __future__ import annotations

import re
from typing import Any

FLAG_PREFIX = "flag:"
FlagValue = bool | int | float | str
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")


class FlagError(ValueError):
    pass


def defined_flags(data: dict[str, Any], source: str) -> dict[str, FlagValue]:
    """The document's `flags:`, checked: names and values of the kinds a flag may be."""
    flags = data.get("flags", {})
    if flags is None:
        return {}
    if not isinstance(flags, dict):
        raise FlagError(f"{source}: $.flags: expected a mapping of flag names to values")
    for name, value in flags.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise FlagError(
                f"{source}: $.flags: {name!r} is not a flag name (letters, digits, `_`, `.`, "
                "`-`, starting with a letter or `_`)"
            )
        if not isinstance(value, bool | int | float | str):
            raise FlagError(
                f"{source}: $.flags.{name}: expected a boolean, a number or a string, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, str) and value.startswith(FLAG_PREFIX):
            raise FlagError(f"{source}: $.flags.{name}: a flag can't refer to another flag")
    return flags


def resolve_flags(data: dict[str, Any], source: str) -> dict[str, Any]:
    """`data` with every `flag:NAME` value outside `flags:` replaced by the flag's value;
    `FlagError` naming the setting for an unknown flag."""
    flags = defined_flags(data, source)
    return {
        key: value if key == "flags" else _resolved(value, flags, f"$.{key}", source)
        for key, value in data.items()
    }


def _resolved(value: Any, flags: dict[str, FlagValue], path: str, source: str) -> Any:
    if isinstance(value, str):
        if not value.startswith(FLAG_PREFIX):
            return value
        name = value[len(FLAG_PREFIX) :]
        if name not in flags:
            known = ", ".join(sorted(flags)) or "(none)"
            raise FlagError(f"{source}: {path}: unknown flag {name!r}; defined flags: {known}")
        return flags[name]
    if isinstance(value, dict):
        return {k: _resolved(v, flags, f"{path}.{k}", source) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, flags, f"{path}[{i}]", source) for i, v in enumerate(value)]
    return value
