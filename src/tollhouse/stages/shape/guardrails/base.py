"""The interface of one input guardrail, and what it finds."""

from __future__ import annotations

from dataclasses import dataclass

from tollhouse.config.input_guardrails import Action, OnError, Scope
from tollhouse.stages.shape.guardrails.request_text import Segment

# (segment index, start, end): a span of one segment's text, for `redact`.
Span = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Finding:
    """What a guardrail found: `rule` names it for the refusal and the record (the rule's
    name, the moderation categories; never the text), `spans` where it is, for the kinds
    that can redact."""

    rule: str
    spans: tuple[Span, ...] = ()


class GuardrailError(Exception):
    """A guardrail could not decide (an endpoint down, an answer it can't read). The
    message says why in a few words and never quotes the request's text."""


class Guardrail:
    """One check, built from its config entry. `inspect` sees the segments of the call's
    text that its `scope` covers and returns a `Finding`, or None when the text passes;
    any exception means it could not decide."""

    kind: str = ""

    def __init__(self, name: str, action: Action, on_error: OnError, scope: Scope) -> None:
        self.name = name
        self.action = action
        self.on_error = on_error
        self.scope = scope

    async def inspect(self, segments: list[Segment]) -> Finding | None:
        raise NotImplementedError
