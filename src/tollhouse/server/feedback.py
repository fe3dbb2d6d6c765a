"""`POST /v1/feedback`: the app's quality score for one call it made, for the guardrails
of the route's variants (rollout/guardrails.py, `quality_margin`).

    {"request_id": "th_…", "score": 0.8}     score from 0 (bad) to 1 (good)

The request id is the gateway's (`x-tollhouse-request-id`, or the SDK's `_request_id`).
The call is looked up among the recent calls of this process, else in the ledger (a call
served by another process of the gateway, once its record is written). With
`keys.required`, the score must come with the key that made the call; another key's call
is answered 404 like an unknown one, so ids can't be probed. The answer says which variant
the score counts for, and `counted: false` when nothing watches it (a route without
variants or guardrails, a variant at 0 %).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from tollhouse.errors import BadRequest, NotFound, ServiceUnavailable
from tollhouse.gateway import Gateway
from tollhouse.ports.keys.record import KeyRecord
from tollhouse.ports.ledger.base import LedgerUnavailable
from tollhouse.types import Reply, json_reply

FEEDBACK_PATH = "/v1/feedback"
_MAX_ID = 64


async def feedback_reply(gateway: Gateway, key: KeyRecord | None, raw: bytes) -> Reply:
    """Count the score `raw` posts, made with `key` (None on an open gateway)."""
    request_id, score = _parsed(raw)
    found = gateway.guardrails.arm_of(request_id)
    if found is None:
        found = await _recorded(gateway, request_id)
    unknown = NotFound(f"request_id: no call {request_id!r} is known", param="request_id")
    if found is None:
        raise unknown
    (route, variant), key_id = found
    if key is not None and key.key_id != key_id:
        raise unknown
    counted = gateway.guardrails.score((route, variant), score)
    return json_reply(
        {
            "request_id": request_id,
            "route": route,
            "variant": variant or None,
            "score": score,
            "counted": counted,
        }
    )


def _parsed(raw: bytes) -> tuple[str, float]:
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(doc, dict):
        raise BadRequest("request body must be a JSON object with request_id and score")
    request_id = doc.get("request_id")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= _MAX_ID:
        raise BadRequest(
            f"request_id: expected the gateway's request id (a string of at most {_MAX_ID})",
            param="request_id",
        )
    score = doc.get("score")
    if (
        not isinstance(score, int | float)
        or isinstance(score, bool)
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        raise BadRequest(f"score: expected a number from 0 to 1, got {score!r}", param="score")
    return request_id, float(score)


async def _recorded(gateway: Gateway, request_id: str) -> tuple[tuple[str, str], str | None] | None:
    store = gateway.ledger.store
    if store is None:
        return None
    try:
        records = await store.query(filters={"request_id": request_id}, limit=1)
    except LedgerUnavailable as error:
        raise ServiceUnavailable(f"the ledger is unavailable: {error}") from None
    if not records or records[0].route is None:
        return None
    record = records[0]
    return (record.route or "", record.variant or ""), record.key_id
