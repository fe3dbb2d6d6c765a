"""`GET /v1/models` of the simulator: a few well-known models in either provider's shape.
The simulator answers for any model name; this list only lets clients that list models first
find something."""

from __future__ import annotations

from typing import Any

ANTHROPIC_MODELS = (
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
)
OPENAI_MODELS = (
    ("gpt-4.1", 1744316542),
    ("gpt-4o", 1715367049),
    ("gpt-4o-mini", 1721172741),
)


def anthropic_models() -> dict[str, Any]:
    data = [
        {"type": "model", "id": model_id, "display_name": name, "created_at": created}
        for model_id, name, created in ANTHROPIC_MODELS
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def openai_models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": model_id, "object": "model", "created": created, "owned_by": "system"}
            for model_id, created in OPENAI_MODELS
        ],
    }
