"""A judge model grades an answer against a rubric: the request it is sent and how its
verdict is read.

The judge sees the rubric, the conversation the case sent (as text) and the answer, and is
asked to reply `PASS` or `FAIL` on its first line, then why. The verdict is the first of
those two words in its reply (a reply with neither is no verdict, and the check fails).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tollhouse.evals.clients import Answer, Request
from tollhouse.evals.suite import Case, JudgeSpec

JUDGE_MAX_TOKENS = 300
_VERDICT = re.compile(r"\b(PASS|FAIL)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool | None
    """None: the judge gave no verdict."""
    reason: str


def judge_request(spec: JudgeSpec, case: Case, answer: Answer) -> Request:
    """What the judge model is sent for `case`'s `answer`."""
    prompt = "\n".join(
        [
            "Grade the answer against the rubric. Reply with PASS or FAIL on the first line,",
            "then one sentence saying why.",
            "",
            f"Rubric: {spec.rubric}",
            "",
            "Conversation:",
            *(f"{message['role']}: {_text(message['content'])}" for message in case.messages),
            "",
            f"Answer: {answer.text or _tool_calls(answer)}",
        ]
    )
    return Request(
        model=spec.model,
        messages=({"role": "user", "content": prompt},),
        parameters={"max_tokens": JUDGE_MAX_TOKENS},
    )


def read_verdict(reply: Answer) -> Verdict:
    if reply.error is not None:
        return Verdict(None, f"the judge's call failed: {reply.error}")
    found = _VERDICT.search(reply.text)
    if found is None:
        return Verdict(None, f"the judge gave no PASS or FAIL: {reply.text[:120]!r}")
    reason = reply.text[found.end() :].lstrip(" \n:.-").rstrip() or found.group(1).upper()
    return Verdict(found.group(1).upper() == "PASS", reason[:200])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return json.dumps(content)


def _tool_calls(answer: Answer) -> str:
    return " ".join(f"[tool {call.name} {json.dumps(call.input)}]" for call in answer.tool_calls)
