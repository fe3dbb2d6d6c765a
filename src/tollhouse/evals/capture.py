"""A starting suite from traffic: the calls of one route whose text the ledger kept
(`ledger.text: redacted` or `full`), newest first, one case per distinct prompt, with
what the model answered as the case's `notes`, for a person to give each case its checks.

The ledger keeps a prompt as `role: text` lines (accounting/call_text.py), so that is what
the cases are rebuilt from: a line that starts with a role begins a message, any other
line continues the one before. What was not text (images, tool calls) comes back as its
placeholder (`[image]`, `[tool_use NAME]`), and what PII scrubbing replaced stays replaced.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import yaml

from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.ports.ledger.record import CallRecord

_ROLE_LINE = re.compile(r"^(system|developer|user|assistant|tool|function): ?(.*)$")
# Calls read per case asked for: some lack text or repeat a prompt.
_READ_FACTOR = 5
_MAX_READ = 20_000
_NOTE_CHARS = 400


class NothingToCapture(ValueError):
    """No call of the route kept its text in the period."""


async def capture_suite(
    store: LedgerStore, *, route: str, since: datetime, limit: int
) -> tuple[dict[str, Any], int]:
    """The suite document and how many calls it was made from."""
    records = await store.query(
        since=since,
        limit=min(limit * _READ_FACTOR, _MAX_READ),
        filters={"route": route, "status": 200},
    )
    kept = [record for record in records if record.prompt_text]
    if not kept:
        why = f" ({len(records)} calls, none with text: is ledger.text off?)" if records else ""
        raise NothingToCapture(f"no answered call on route {route!r} kept its text{why}")
    api = Counter(record.client_format for record in kept).most_common(1)[0][0]
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in kept:
        if record.client_format != api or record.prompt_text in seen:
            continue
        seen.add(str(record.prompt_text))
        cases.append(_case(record))
        if len(cases) == limit:
            break
    suite = {"name": f"{route}-captured", "api": api, "model": route, "cases": cases}
    return suite, len(cases)


def suite_yaml(suite: dict[str, Any], *, route: str, since: datetime) -> str:
    header = (
        f"# Captured by `tollhouse eval capture` from {len(suite['cases'])} calls on route "
        f"{route} since {since.isoformat(timespec='seconds')}.\n"
        "# Give each case its checks (contains, regex, json_schema, judge, ...); `notes`\n"
        "# holds what the model answered then. Text is as the ledger kept it (redacted).\n"
    )
    return header + yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=100)


def parse_prompt_text(text: str) -> list[dict[str, str]]:
    """The messages of a ledger's prompt text (an Anthropic call's system prompt is its
    first, with the role `system`)."""
    messages: list[dict[str, str]] = []
    for line in text.split("\n"):
        found = _ROLE_LINE.match(line)
        if found:
            messages.append({"role": found.group(1), "content": found.group(2)})
        elif messages:
            messages[-1]["content"] += "\n" + line
        else:
            messages.append({"role": "user", "content": line})
    return messages


def _case(record: CallRecord) -> dict[str, Any]:
    messages = parse_prompt_text(str(record.prompt_text))
    case: dict[str, Any] = {"id": record.request_id}
    if record.client_format == "anthropic" and messages and messages[0]["role"] == "system":
        case["system"] = messages.pop(0)["content"]
    case["messages"] = messages
    answer = (record.answer_text or "").strip()
    if len(answer) > _NOTE_CHARS:
        answer = answer[: _NOTE_CHARS - 1] + "…"
    served = record.model_served or record.model_requested
    case["notes"] = f"answered by {served} on {record.ts.date().isoformat()}: {answer}"
    case["checks"] = []
    return case
