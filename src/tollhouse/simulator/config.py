"""The simulator's options: an immutable snapshot validated once, from code or from a
YAML/TOML mapping (`SimulatorConfig.from_mapping`), with errors that name the key.

Scripts and fault rules are checked when they are built (a bad regex or fault spec fails at
load time, not on the first matching request).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tollhouse.simulator.faults import Fault, parse_fault


@dataclass(frozen=True)
class ScriptRule:
    """A scripted answer: when `pattern` (a regex, `re.search`) matches the text of the latest
    user turn, `reply` is the answer's text, verbatim, and/or `tool_call` makes the answer a
    tool call: `{"name": tool name (default: the first tool offered), "input": {...}
    (default: generated from the tool's schema)}`. A tool call is only made when the request
    offers tools and does not forbid them; otherwise the rule answers with its `reply`, or
    generated text. `stop_reason: refusal` makes the answer a refusal instead: `reply` (or a
    stock sentence) stopped with `refusal` (OpenAI: `finish_reason: content_filter`)."""

    pattern: str
    reply: str | None = None
    tool_call: Mapping[str, Any] | None = None
    stop_reason: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "regex", re.compile(self.pattern))
        except (re.error, TypeError) as exc:
            raise ValueError(f"pattern: not a valid regular expression: {exc}") from None
        if self.reply is not None and not isinstance(self.reply, str):
            raise ValueError("reply: expected a string")
        if self.stop_reason not in (None, "refusal"):
            raise ValueError("stop_reason: expected refusal")
        call = self.tool_call
        if call is None:
            return
        if not isinstance(call, Mapping):
            raise ValueError("tool_call: expected a mapping with optional `name` and `input`")
        unknown = set(call) - {"name", "input"}
        if unknown:
            raise ValueError(f"tool_call: unknown key {sorted(unknown)[0]!r}; expected name, input")
        if "name" in call and not isinstance(call["name"], str):
            raise ValueError("tool_call.name: expected a string")
        if "input" in call and not isinstance(call["input"], Mapping):
            raise ValueError("tool_call.input: expected a mapping")


@dataclass(frozen=True)
class FaultRule:
    """Inject `fault` (grammar in `tollhouse.simulator.faults`) into generation calls whose
    model matches the glob `model` (any model when None). `first_n`: fire on the first N
    matching calls only (counted per rule). `probability`: fire on each matching call with
    this chance, drawn from an RNG seeded by the config's seed. Both together: at random, at
    most N times. Neither: every matching call."""

    fault: str
    model: str | None = None
    first_n: int | None = None
    probability: float | None = None
    parsed: Fault = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "parsed", parse_fault(self.fault))
        except ValueError as exc:
            raise ValueError(f"fault: {exc}") from None
        if self.model is not None and not isinstance(self.model, str):
            raise ValueError("model: expected a glob pattern string")
        if self.first_n is not None and (not _is_int(self.first_n) or self.first_n < 1):
            raise ValueError("first_n: expected an integer >= 1")
        p = self.probability
        if p is not None and (not _is_number(p) or not 0.0 <= p <= 1.0):
            raise ValueError("probability: expected a number between 0 and 1")


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 0
    ttft_ms: float = 0.0
    tokens_per_second: float = 0.0
    reply_tokens: int = 60
    scripts: tuple[ScriptRule, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    rate_limit_requests_per_minute: int = 1_000_000
    rate_limit_input_tokens_per_minute: int = 100_000_000
    rate_limit_output_tokens_per_minute: int = 100_000_000
    cache_ttl_seconds: float = 300.0
    # Milliseconds between two requests of a batch processed in the background (and before
    # an OpenAI batch leaves `validating`): how long a batch stays in progress.
    batch_request_ms: float = 0.0
    # Usage fields every answer reports beside its token counts (see engine.py's
    # `x-simulator-usage`, which a request can set over these).
    usage: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.usage, Mapping) or not all(isinstance(k, str) for k in self.usage):
            raise ValueError("usage: expected a mapping of usage fields")
        for name in _INT_MINIMUM:
            value = getattr(self, name)
            if not _is_int(value) or value < _INT_MINIMUM[name]:
                raise ValueError(f"{name}: expected an integer >= {_INT_MINIMUM[name]}")
        for name in ("ttft_ms", "tokens_per_second", "batch_request_ms"):
            if not _is_number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected a number >= 0")
        if not _is_number(self.cache_ttl_seconds) or self.cache_ttl_seconds <= 0:
            raise ValueError("cache_ttl_seconds: expected a number > 0")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SimulatorConfig:
        """Build from a YAML/TOML mapping with the same keys as the fields; `scripts` and
        `faults` are lists of mappings (a fault may also be given as its bare spec string).
        Raises ValueError naming the offending key."""
        if not isinstance(data, Mapping):
            raise ValueError("expected a mapping of simulator options")
        known = {f.name for f in fields(cls)}
        options: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(
                    f"{key}: unknown option; expected one of {', '.join(sorted(known))}"
                )
            if key == "scripts":
                options[key] = _rules(value, key, ScriptRule)
            elif key == "faults":
                options[key] = _rules(value, key, FaultRule)
            else:
                options[key] = value
        return cls(**options)


_INT_MINIMUM = {
    "seed": 0,
    "reply_tokens": 1,
    "rate_limit_requests_per_minute": 1,
    "rate_limit_input_tokens_per_minute": 1,
    "rate_limit_output_tokens_per_minute": 1,
}


def _rules(value: Any, key: str, rule: type[ScriptRule] | type[FaultRule]) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key}: expected a list")
    built = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, rule):
            built.append(item)
            continue
        if rule is FaultRule and isinstance(item, str):
            item = {"fault": item}
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        allowed = [f.name for f in fields(rule) if f.init]
        for name in item:
            if name not in allowed:
                raise ValueError(f"{where}.{name}: unknown key; expected one of {allowed}")
        if allowed[0] not in item:
            raise ValueError(f"{where}.{allowed[0]}: required")
        try:
            built.append(rule(**item))
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
    return tuple(built)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
