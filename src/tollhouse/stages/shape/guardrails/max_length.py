"""Local rule: a bound on how much text the checked segments hold, in characters."""

from __future__ import annotations

from tollhouse.config.input_guardrails import Action, OnError, Scope
from tollhouse.stages.shape.guardrails.base import Finding, Guardrail
from tollhouse.stages.shape.guardrails.request_text import Segment


class MaxLengthGuardrail(Guardrail):
    kind = "max_length"

    def __init__(
        self, name: str, max_chars: int, action: Action, on_error: OnError, scope: Scope
    ) -> None:
        super().__init__(name, action, on_error, scope)
        self.max_chars = max_chars

    async def inspect(self, segments: list[Segment]) -> Finding | None:
        length = sum(len(segment.text) for segment in segments)
        if length <= self.max_chars:
            return None
        return Finding(f"{length} characters; the limit is {self.max_chars}")
