"""The checks input guardrails and untrusted-content settings get at load, beyond their
shape: each error names the key and says what is expected
(`$.input_guardrails.secrets.patterns.api_key: not a regular expression (...)`)."""

from __future__ import annotations

import importlib.util
import re

from tollhouse.config.input_guardrails import (
    DenyListGuardrailConfig,
    LanguageGuardrailConfig,
    ModerationGuardrailConfig,
    PatternGuardrailConfig,
)
from tollhouse.config.model import GatewayConfig

# Guardrail names travel in an error message, a ledger column and metric labels.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_input_guardrails(config: GatewayConfig) -> str | None:
    """What is wrong with `config`'s input guardrails or the routes' lists of them (the
    message, without the source), or None."""
    for name, guardrail in config.input_guardrails.items():
        key = f"$.input_guardrails.{name}"
        if not _NAME.match(name):
            return f"{key}: a name of letters, digits, '_', '.' or '-' (at most 64) is expected"
        problem = _check_one(config, key, guardrail)
        if problem is not None:
            return problem
    for model, route in config.models.items():
        for i, name in enumerate(route.input_guardrails):
            if name not in config.input_guardrails:
                known = ", ".join(sorted(config.input_guardrails)) or "(none)"
                return (
                    f"$.models.{model}.input_guardrails[{i}]: unknown guardrail {name!r}; "
                    f"defined in $.input_guardrails: {known}"
                )
        if len(set(route.input_guardrails)) != len(route.input_guardrails):
            return f"$.models.{model}.input_guardrails: a guardrail is listed twice"
    return None


def _check_one(config: GatewayConfig, key: str, guardrail: object) -> str | None:
    if isinstance(guardrail, PatternGuardrailConfig):
        if not guardrail.patterns:
            return f"{key}.patterns: at least one pattern is required"
        for rule, pattern in guardrail.patterns.items():
            if not _NAME.match(rule):
                return f"{key}.patterns: rule name {rule!r}: letters, digits, '_', '.' or '-'"
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                return f"{key}.patterns.{rule}: not a regular expression ({exc})"
            if compiled.match(""):
                return f"{key}.patterns.{rule}: matches the empty string, so every text"
    elif isinstance(guardrail, DenyListGuardrailConfig):
        if not guardrail.terms or any(not term.strip() for term in guardrail.terms):
            return f"{key}.terms: at least one term is required, and none may be blank"
    elif isinstance(guardrail, ModerationGuardrailConfig):
        provider = config.providers.get(guardrail.provider)
        if provider is None:
            known = ", ".join(sorted(config.providers)) or "(none)"
            return (
                f"{key}.provider: unknown provider {guardrail.provider!r}; "
                f"defined providers: {known}"
            )
        speaks_openai = provider.type in ("openai", "openai-compatible") or (
            provider.type == "simulator" and provider.simulator.get("format") == "openai"
        )
        if not speaks_openai:
            return (
                f"{key}.provider: {guardrail.provider!r} does not speak the OpenAI format, "
                "whose /moderations endpoint this guardrail calls"
            )
    elif isinstance(guardrail, LanguageGuardrailConfig):
        if not guardrail.allowed:
            return f"{key}.allowed: at least one language (ISO 639-1 code) is required"
        if importlib.util.find_spec("py3langid") is None:
            return (
                f"{key}: the language guardrail needs the offline detector py3langid: "
                "pip install 'tollhouse[language]'"
            )
    return None
