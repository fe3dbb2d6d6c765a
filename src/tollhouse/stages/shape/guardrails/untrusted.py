"""Untrusted content, kept apart from the instructions: each untrusted text of a request
(tool results, text documents, the messages a route or the request names) is wrapped in
an `<untrusted_content source="...">` block, the system prompt gets the route's notice
saying what such blocks are, and the text inside is scanned for known prompt-injection
patterns (guardrails/injection_patterns.py): flagged in the record by default, refused
with `injection: block`.

A text cannot close its own block: any `<untrusted_content` or `</untrusted_content` tag
inside it is neutralised (its `<` becomes `&lt;`) and flagged as `delimiter_spoofing`.
"""

from __future__ import annotations

import re

from tollhouse.call import Call
from tollhouse.config.input_guardrails import UntrustedContentConfig
from tollhouse.errors import BadRequest, GuardrailBlocked
from tollhouse.stages.shape.guardrails.injection_patterns import injections_in
from tollhouse.stages.shape.guardrails.request_text import RequestText, Segment

UNTRUSTED_HEADER = "x-tollhouse-untrusted"
_MAX_HEADER_POSITIONS = 256
_TAG = re.compile(r"<(\s*/?\s*untrusted_content)", re.IGNORECASE)


def mark_untrusted(call: Call, policy: UntrustedContentConfig) -> None:
    """Wrap `call`'s untrusted texts, note the notice in its system prompt, and record
    what injection patterns they hold; `GuardrailBlocked` when the policy blocks them."""
    positions = set(policy.messages) | header_positions(call, policy)
    text = RequestText(call.body, call.client_format)
    chosen = [s for s in text.segments if _untrusted(s, policy, positions)]
    if not chosen:
        return
    found: list[str] = []
    for segment in chosen:
        if segment.source == "system":
            raise BadRequest(
                f"{UNTRUSTED_HEADER}: message {segment.message} is a system message; "
                "untrusted content is kept out of the system instructions",
                param=UNTRUSTED_HEADER,
            )
        found.extend(name for name in injections_in(segment.text) if name not in found)
    if policy.injection != "off":
        result = "blocked" if policy.injection == "block" else "flagged"
        entry = {"guardrail": "untrusted", "kind": "injection", "result": result}
        if not found:
            entry["result"] = "pass"
        if found:
            entry["rule"] = ", ".join(found)
        if call.guardrails is None:
            call.guardrails = []
        call.guardrails.append(entry)
        if found and policy.injection == "block":
            raise GuardrailBlocked("untrusted", "injection", ", ".join(found))
    editable = text.editable()
    for segment in chosen:
        copy = editable[segment.index]
        body = _TAG.sub(r"&lt;\1", copy.text)
        copy.replace(f'<untrusted_content source="{copy.source}">\n{body}\n</untrusted_content>')
    text.body = call.wire.with_system(text.body, "append", policy.notice)
    text.commit(call)


def header_positions(call: Call, policy: UntrustedContentConfig) -> set[int]:
    """The message positions the request's `x-tollhouse-untrusted` header lists (when
    the route honours it); `BadRequest` naming the header when it is not a list of them."""
    if not policy.header:
        return set()
    value = call.headers.get(UNTRUSTED_HEADER)
    if not value:
        return set()
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > _MAX_HEADER_POSITIONS or not all(p.isdigit() and len(p) < 7 for p in parts):
        raise BadRequest(
            f"{UNTRUSTED_HEADER}: expected comma-separated message positions (0, 1, ...), "
            f"at most {_MAX_HEADER_POSITIONS}",
            param=UNTRUSTED_HEADER,
        )
    return {int(part) for part in parts}


def _untrusted(segment: Segment, policy: UntrustedContentConfig, positions: set[int]) -> bool:
    if segment.message in positions:
        return True
    if segment.source == "tool_result":
        return policy.tool_results
    if segment.source == "document":
        return policy.documents
    return False
