"""`POST /v1/moderations` as OpenAI answers it, with scripted categories: an input that
holds `[moderation:CATEGORY]` (e.g. `[moderation:violence]`) is flagged in that category
with a score of 0.9; every other category scores 0.001 and the input passes. So a test
decides what the moderation endpoint says by what its request says, without a real model.

`input` is a string or an array of strings (OpenAI's text shapes); one result per input.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tollhouse.simulator.request_checks import InvalidRequest

# OpenAI's omni-moderation categories.
CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_TRIGGER = re.compile(r"\[moderation:([a-z/-]+)\]")
MAX_INPUTS = 2048


def moderation_answer(doc: dict[str, Any]) -> dict[str, Any]:
    """The answer to a moderation request `doc`; `InvalidRequest` for what OpenAI would
    refuse with 400."""
    inputs = doc.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if (
        not isinstance(inputs, list)
        or not inputs
        or len(inputs) > MAX_INPUTS
        or not all(isinstance(item, str) for item in inputs)
    ):
        raise InvalidRequest(
            f"input: expected a string or an array of 1 to {MAX_INPUTS} strings", param="input"
        )
    model = doc.get("model", "omni-moderation-latest")
    return {
        "id": f"modr-{uuid.uuid4().hex[:24]}",
        "model": model,
        "results": [_result(text) for text in inputs],
    }


def _result(text: str) -> dict[str, Any]:
    named = {match for match in _TRIGGER.findall(text) if match in CATEGORIES}
    return {
        "flagged": bool(named),
        "categories": {name: name in named for name in CATEGORIES},
        "category_scores": {name: 0.9 if name in named else 0.001 for name in CATEGORIES},
        "category_applied_input_types": {name: ["text"] for name in CATEGORIES},
    }
