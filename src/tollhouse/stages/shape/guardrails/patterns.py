"""Local rules: regular expressions by rule name, and deny-lists of whole words. Both
find spans, so both can `redact` as well as block or flag."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tollhouse.config.input_guardrails import Action, OnError, Scope
from tollhouse.stages.shape.guardrails.base import Finding, Guardrail, Span
from tollhouse.stages.shape.guardrails.request_text import Segment


class PatternGuardrail(Guardrail):
    """A finding for each rule whose pattern matches; the rules named are those that
    matched, in config order."""

    kind = "pattern"

    def __init__(
        self,
        name: str,
        rules: Mapping[str, re.Pattern[str]],
        action: Action,
        on_error: OnError,
        scope: Scope,
    ) -> None:
        super().__init__(name, action, on_error, scope)
        self.rules = dict(rules)

    @classmethod
    def of_patterns(
        cls,
        name: str,
        patterns: Mapping[str, str],
        *,
        ignore_case: bool,
        action: Action,
        on_error: OnError,
        scope: Scope,
    ) -> PatternGuardrail:
        flags = re.IGNORECASE if ignore_case else 0
        rules = {rule: re.compile(pattern, flags) for rule, pattern in patterns.items()}
        return cls(name, rules, action, on_error, scope)

    async def inspect(self, segments: list[Segment]) -> Finding | None:
        matched: list[str] = []
        spans: list[Span] = []
        for rule, pattern in self.rules.items():
            hit = False
            for segment in segments:
                for match in pattern.finditer(segment.text):
                    if match.end() > match.start():
                        hit = True
                        spans.append((segment.index, match.start(), match.end()))
                        if self.action != "redact":
                            break  # where it is matters only to redaction
                if hit and self.action != "redact":
                    break
            if hit:
                matched.append(rule)
        if not matched:
            return None
        return Finding(", ".join(matched), tuple(spans))


class DenyListGuardrail(PatternGuardrail):
    """Whole words (or phrases), case-insensitively, as one alternation. The rule a
    finding names is the guardrail's own: naming the term would echo the text."""

    kind = "deny_list"

    def __init__(
        self, name: str, terms: Sequence[str], action: Action, on_error: OnError, scope: Scope
    ) -> None:
        # Longest first, so that "credit card" wins over "credit" at the same place.
        words = sorted({term.strip() for term in terms}, key=len, reverse=True)
        alternation = "|".join(r"\s+".join(map(re.escape, word.split())) for word in words)
        pattern = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)
        super().__init__(name, {"denied term": pattern}, action, on_error, scope)
