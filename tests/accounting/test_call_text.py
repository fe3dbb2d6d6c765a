"""A call's history as text for the ledger (accounting/call_text.py) takes time linear in the
conversation, whose length a client controls."""

from __future__ import annotations

from typing import Any

import pytest
from tests.scaling import LINEAR_GROWTH_LIMIT, growth

from tollhouse.accounting.call_text import prompt_text, system_prompt_hash

CONVERSATIONS: dict[str, Any] = {
    "messages": lambda n: {"messages": [{"role": "user", "content": "hi"}] * n},
    "parts": lambda n: {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}] * n}]
    },
    "tool results": lambda n: {
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "ok"}] * n}]
    },
    "system messages": lambda n: {"messages": [{"role": "system", "content": "be brief"}] * n},
}


@pytest.mark.parametrize("make", CONVERSATIONS.values(), ids=CONVERSATIONS.keys())
def test_prompt_text_takes_time_linear_in_the_conversation(make: Any) -> None:
    assert growth(lambda body: prompt_text(body, "openai"), make, 5000) < LINEAR_GROWTH_LIMIT


def test_system_prompt_hash_takes_time_linear_in_the_system_messages() -> None:
    make = CONVERSATIONS["system messages"]
    assert growth(lambda b: system_prompt_hash(b, "openai"), make, 5000) < LINEAR_GROWTH_LIMIT


def test_prompt_text_reads_as_the_conversation() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert prompt_text(body, "openai") == "user: hi\nassistant: yo"
