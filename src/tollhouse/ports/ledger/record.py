"""One call as the ledger keeps it: who asked, what answered, what it used and cost.

A `CallRecord` is built once per call on the request path, so it is a frozen msgspec
Struct: cheap to construct, and encoded to the spill file without a schema walk.

`ts` is a timezone-aware UTC `datetime` (when the call arrived), not an epoch float: it
round-trips exactly through PostgreSQL's `timestamptz`, reads as ISO 8601 text in SQLite,
and can't be mistaken for seconds or milliseconds. A naive datetime is refused at
construction, because a ledger whose clock zone is a guess can't be summed by day.

`cost_usd` is a `Decimal` kept exact end to end (see accounting/cost.py), or None when
the price is unknown: never a silent zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from tollhouse.types import WireFormat


class CallRecord(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str  # the gateway's id of the call; unique in the ledger
    ts: datetime  # UTC, aware
    client_format: WireFormat
    endpoint: str  # e.g. "/v1/messages"
    model_requested: str
    status: int  # the HTTP status the client got

    upstream_request_id: str | None = None
    key_id: str | None = None
    end_user: str | None = None
    team: str | None = None
    project: str | None = None
    session_id: str | None = None
    model_served: str | None = None  # None when no deployment answered
    provider: str | None = None
    route: str | None = None
    variant: str | None = None
    config_version: int | None = None  # the config version that served it (ports/config)
    system_prompt_hash: str | None = None
    stop_reason: str | None = None

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False  # the upstream reported no usage; tokens are our count

    latency_ms: float = 0.0
    ttft_ms: float | None = None  # time to first token; None for a call that sent none
    attempts: int = 1
    # ms the call waited for a free upstream connection (a provider's max_connections
    # reached); None when it did not wait
    pool_wait_ms: float | None = None
    fallback_used: bool = False
    cache_hit: bool = False
    cost_usd: Decimal | None = None  # None: price unknown
    # A response-cache hit's: what the call that produced its answer cost (None: unknown).
    cost_avoided_usd: Decimal | None = None
    error_type: str | None = None
    truncated: bool = False
    stream: bool = False
    # Structured output, when the route or request required it: "valid", "retried" (valid
    # after its corrective retry) or "invalid" (refused, or flagged); None otherwise.
    structured_output: str | None = None

    # How the provider bills the call beyond its token counts (accounting/cost.py), and the
    # call's cost by line: each None when its price is unknown (then `cost_usd` is None).
    service_tier: str | None = None  # as the upstream reported it: standard, priority, flex...
    inference_geo: str | None = None  # "global", "us"
    speed: str | None = None  # "standard", "fast"
    context_window: str | None = None  # the band the prompt fell in: "0-200k", "200k-1M"
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    input_cost_usd: Decimal | None = None
    output_cost_usd: Decimal | None = None
    cache_write_5m_cost_usd: Decimal | None = None
    cache_write_1h_cost_usd: Decimal | None = None
    cache_read_cost_usd: Decimal | None = None
    audio_cost_usd: Decimal | None = None
    web_search_cost_usd: Decimal | None = None
    web_fetch_cost_usd: Decimal | None = None
    other_tool_cost_usd: Decimal | None = None  # every other server tool (metadata names them)
    # Billed against a commitment, not per token (Anthropic's Priority Tier): `cost_usd` is
    # its standard-rate price, counted by budgets and left out of the cost report.
    commitment_billed: bool = False
    # What the route's input guardrails and untrusted-content marking found (JSON text: a
    # list of {guardrail, kind, result, rule | error, on_error}); None when none ran.
    # Names and results only, never the request's text.
    guardrails: str | None = None

    # The line's `custom_id` when the call was one request of a Message Batch (its batch
    # id is in `metadata.batch_id`); None for every other call.
    custom_id: str | None = None

    # What the route's history bound dropped from the conversation before it was sent
    # (stages/shape/history_bound.py): messages and their estimated input tokens.
    history_trimmed_messages: int = 0
    history_trimmed_tokens: int = 0
    # On a route of candidates listed cheapest first (stages/route/candidates.py): the rule
    # that chose where the call started ("default": none held; None: no such route),
    # whether it escalated to a dearer candidate, and what the answers it escalated from
    # cost (None: none, or unknown; `cost_usd` is the answer the client got).
    route_rule: str | None = None
    escalated: bool = False
    escalated_cost_usd: Decimal | None = None

    prompt_text: str | None = None  # already scrubbed by the caller, or None when not kept
    answer_text: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None or self.ts.utcoffset() is None:
            raise ValueError("CallRecord.ts must be timezone-aware (UTC)")
