"""Local rule: the text's language must be one the route allows, by py3langid (an
offline detector whose model ships inside the package: no download, no network)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from tollhouse.config.input_guardrails import Action, OnError, Scope
from tollhouse.stages.shape.guardrails.base import Finding, Guardrail
from tollhouse.stages.shape.guardrails.request_text import Segment


class LanguageGuardrail(Guardrail):
    """The joined text of the segments is classified once; shorter than `min_chars`, it
    passes unjudged."""

    kind = "language"

    def __init__(
        self,
        name: str,
        allowed: Sequence[str],
        min_chars: int,
        action: Action,
        on_error: OnError,
        scope: Scope,
    ) -> None:
        super().__init__(name, action, on_error, scope)
        self.allowed = frozenset(code.lower() for code in allowed)
        self.min_chars = min_chars
        self._classify = _classifier()

    async def inspect(self, segments: list[Segment]) -> Finding | None:
        text = "\n".join(segment.text for segment in segments)
        if len(text.strip()) < self.min_chars:
            return None
        language, _score = self._classify(text)
        if language in self.allowed:
            return None
        return Finding(f"language {language!r} is not among those allowed")


def _classifier() -> Any:
    """py3langid's classifier (the `language` extra; its model loads on first use).
    Imported by name: it is an optional, untyped dependency, absent where the compiled
    build type-checks the package."""
    return importlib.import_module("py3langid").classify
