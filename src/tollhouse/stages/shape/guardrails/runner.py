"""The route's input guardrails on one call, in the order the route lists them.

Each guardrail sees the text as the ones before it left it (a redaction first, then
moderation sees `[REDACTED:...]`, not the secret). Its result goes on the call's record
(`call.guardrails`, the ledger's `guardrails` column): `pass`, `flagged`, `redacted`,
`blocked` or `error`. A guardrail that raises is an `error`, never a `pass`: with
`on_error: closed` the call is refused (503), with `open` it goes on, recorded so.
A `block` finding refuses the call (400) and stops there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollhouse.call import Call
from tollhouse.errors import GuardrailBlocked, GuardrailUnavailable
from tollhouse.stages.shape.guardrails.base import Guardrail, GuardrailError, Span
from tollhouse.stages.shape.guardrails.request_text import RequestText

Result = str  # "pass" | "flagged" | "redacted" | "blocked" | "error"


@dataclass(frozen=True, slots=True)
class Outcome:
    guardrail: Guardrail
    result: Result
    detail: str = ""  # the rule found, or why it could not decide

    def record(self) -> dict[str, str]:
        """The outcome as the ledger keeps it: names and results, never the text."""
        entry = {"guardrail": self.guardrail.name, "kind": self.guardrail.kind}
        entry["result"] = self.result
        if self.result == "error":
            entry["error"] = self.detail
            entry["on_error"] = self.guardrail.on_error
        elif self.detail:
            entry["rule"] = self.detail
        return entry


async def guard_input(guardrails: tuple[Guardrail, ...], call: Call) -> None:
    """Run `guardrails` on `call`: refuse it (`GuardrailBlocked`, `GuardrailUnavailable`)
    or let it through, its body redacted where one said so."""
    text = RequestText(call.body, call.client_format)
    for guardrail in guardrails:
        if call.trace is not None:  # a child span of the call's (observability/tracing.py)
            span = call.trace.guardrail_started(guardrail.name)
            outcome = await check_guardrail(guardrail, text)
            span.ended(guardrail.kind, guardrail.action, outcome.result, outcome.detail)
        else:
            outcome = await check_guardrail(guardrail, text)
        note_outcome(call, outcome)
        if outcome.result == "blocked":
            raise GuardrailBlocked(guardrail.name, guardrail.kind, outcome.detail)
        if outcome.result == "error" and guardrail.on_error == "closed":
            raise GuardrailUnavailable(guardrail.name, guardrail.kind, outcome.detail)
    text.commit(call)


async def check_guardrail(guardrail: Guardrail, text: RequestText) -> Outcome:
    """One guardrail on the call's text, redacting it when its finding says to: the one
    place a guardrail runs (what a trace wraps in a span of its own)."""
    try:
        finding = await guardrail.inspect(text.in_scope(guardrail.scope))
    except GuardrailError as exc:
        return Outcome(guardrail, "error", str(exc))
    except Exception as exc:  # a guardrail that fails never reports a pass
        return Outcome(guardrail, "error", f"failed ({type(exc).__name__})")
    if finding is None:
        return Outcome(guardrail, "pass")
    if guardrail.action == "redact":
        redact(text, guardrail.name, finding.spans)
        return Outcome(guardrail, "redacted", finding.rule)
    result = "blocked" if guardrail.action == "block" else "flagged"
    return Outcome(guardrail, result, finding.rule)


def note_outcome(call: Call, outcome: Outcome) -> None:
    """Add `outcome` to what the call's record says about its guardrails."""
    if call.guardrails is None:
        call.guardrails = []
    call.guardrails.append(outcome.record())


def redact(text: RequestText, name: str, spans: tuple[Span, ...]) -> None:
    """Replace each span with `[REDACTED:name]` (overlapping spans merged)."""
    segments = text.editable()
    by_segment: dict[int, list[tuple[int, int]]] = {}
    for index, start, end in spans:
        by_segment.setdefault(index, []).append((start, end))
    mark = f"[REDACTED:{name}]"
    for index, found in by_segment.items():
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        segment = segments[index]
        value = segment.text
        for start, end in reversed(merged):
            value = value[:start] + mark + value[end:]
        segment.replace(value)
