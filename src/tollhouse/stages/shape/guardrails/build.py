"""The guardrails a config defines, built once per snapshot (patterns compiled, the
moderation provider's adapter found), for the router to put on each route's plan."""

from __future__ import annotations

from collections.abc import Mapping

from tollhouse.config import GatewayConfig
from tollhouse.config.input_guardrails import (
    DenyListGuardrailConfig,
    InputGuardrailConfig,
    LanguageGuardrailConfig,
    MaxLengthGuardrailConfig,
    ModerationGuardrailConfig,
    PatternGuardrailConfig,
)
from tollhouse.providers.base import Provider
from tollhouse.stages.shape.guardrails.base import Guardrail
from tollhouse.stages.shape.guardrails.language import LanguageGuardrail
from tollhouse.stages.shape.guardrails.max_length import MaxLengthGuardrail
from tollhouse.stages.shape.guardrails.moderation import ModerationGuardrail
from tollhouse.stages.shape.guardrails.patterns import DenyListGuardrail, PatternGuardrail


def build_guardrails(
    config: GatewayConfig, providers: Mapping[str, Provider]
) -> dict[str, Guardrail]:
    """Every guardrail of `config.input_guardrails`, by name (the config was checked at
    load: config/guardrail_checks.py)."""
    return {
        name: build_guardrail(name, entry, providers)
        for name, entry in config.input_guardrails.items()
    }


def build_guardrail(
    name: str, entry: InputGuardrailConfig, providers: Mapping[str, Provider]
) -> Guardrail:
    on_error, scope = entry.on_error, entry.scope
    if isinstance(entry, PatternGuardrailConfig):
        return PatternGuardrail.of_patterns(
            name,
            entry.patterns,
            ignore_case=entry.ignore_case,
            action=entry.action,
            on_error=on_error,
            scope=scope,
        )
    if isinstance(entry, DenyListGuardrailConfig):
        return DenyListGuardrail(name, entry.terms, entry.action, on_error, scope)
    if isinstance(entry, MaxLengthGuardrailConfig):
        return MaxLengthGuardrail(name, entry.max_chars, entry.action, on_error, scope)
    if isinstance(entry, ModerationGuardrailConfig):
        return ModerationGuardrail(
            name,
            providers[entry.provider],
            model=entry.model,
            categories=entry.categories,
            timeout=entry.timeout_seconds,
            action=entry.action,
            on_error=on_error,
            scope=scope,
        )
    assert isinstance(entry, LanguageGuardrailConfig)
    return LanguageGuardrail(name, entry.allowed, entry.min_chars, entry.action, on_error, scope)
