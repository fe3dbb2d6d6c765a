"""A finished `Call` turned into the `CallRecord` the ledger and the call log keep.

Everything written is privacy-safe by construction:
- prompt and answer text only when the ledger's `text` setting asks for it, and scrubbed of
  PII unless it says `full`;
- identifiers the client chose (end user, session) are kept as given when they carry no
  PII, and otherwise replaced by a stable pseudonym (`pii:` + a hash), so an app that uses
  e-mail addresses as user ids still gets per-user reports without the addresses on disk;
- no header, no key, no request body beyond the text above is ever copied.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from tollhouse.accounting.call_text import answer_text, prompt_text, system_prompt_hash
from tollhouse.accounting.cost import CallCost
from tollhouse.accounting.usage import Usage
from tollhouse.call import Call
from tollhouse.errors import error_type_for_status
from tollhouse.ports.ledger.record import CallRecord
from tollhouse.privacy import find_pii, scrub_text

TextMode = Literal["off", "redacted", "full"]

_ENDPOINT_PATHS = {
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
    "chat_completions": "/v1/chat/completions",
    "responses": "/v1/responses",
    "embeddings": "/v1/embeddings",
    "message_batches": "/v1/messages/batches",
    "batches": "/v1/batches",
}
SESSION_HEADERS = ("x-tollhouse-session-id", "x-session-id")


class CallRecorder:
    """Builds records under one text policy (`off`, `redacted`, `full`)."""

    def __init__(self, text: TextMode = "off", *, max_text_chars: int = 32_768) -> None:
        self.text = text
        self.max_text_chars = max_text_chars
        self._pseudonyms: dict[str, str] = {}

    @property
    def keeps_text(self) -> bool:
        return self.text != "off"

    def record(self, call: Call, status: int, *, latency: float, ttft: float | None) -> CallRecord:
        usage = call.usage
        cost = call.cost
        body = call.body
        fmt = call.client_format
        error_type = None
        if status >= 400:
            error_type = call.error_type or error_type_for_status(fmt, status)
        metadata: dict[str, Any] = {}
        if call.served_by:
            metadata["served_by"] = call.served_by
        if call.degraded:
            metadata["degraded"] = True
        if call.batch_id is not None:
            metadata["batch_id"] = call.batch_id
        if call.cache_hit:
            metadata["response_cache"] = call.cache_hit
            if call.cache_source:
                metadata["response_cache_source"] = call.cache_source
        if call.unpriced_admission:
            metadata["unpriced_admission"] = call.unpriced_admission
        if call.max_tokens_clamp is not None:
            by, asked, sent = call.max_tokens_clamp
            metadata["max_tokens_clamp"] = {"by": by, "asked": asked, "sent": sent}
        if call.lifecycle is not None:
            metadata["lifecycle"] = call.lifecycle.record()
        if call.dropped_params:
            metadata["dropped_params"] = list(call.dropped_params)
        if call.failures:
            metadata["failures"] = [f"{deployment}:{kind}" for deployment, kind in call.failures]
        if call.escalations:
            metadata["escalations"] = [f"{model}:{why}" for model, why, _ in call.escalations]
        if usage is not None and usage.server_tool_use:
            metadata["server_tool_use"] = dict(usage.server_tool_use)
        if usage is not None and usage.iterations:
            metadata["iterations"] = [step.record() for step in usage.iterations]
        if call.structured_output_errors and self.keeps_text:
            # Quotes the answer (what failed and where): kept under the text policy only.
            metadata["structured_output_errors"] = self._keep(call.structured_output_errors)
        if cost is not None and cost.unpriced:
            metadata["unpriced"] = list(cost.unpriced)
        trimmed = call.history_trimmed or (0, 0)
        prompt = answer = None
        if self.keeps_text:
            prompt = self._keep(prompt_text(body, fmt))
            if call.answer_capture:
                answer = self._keep(
                    answer_text(bytes(call.answer_capture), fmt, stream=call.stream)
                )
        return CallRecord(
            request_id=call.request_id,
            ts=datetime.fromtimestamp(call.started_wall, UTC),
            client_format=fmt,
            endpoint=_ENDPOINT_PATHS[call.endpoint],
            model_requested=str(body.get("model", "")),
            status=status,
            upstream_request_id=call.upstream_request_id,
            key_id=call.key_id,
            end_user=self._identifier(call.end_user or call.requested_end_user()),
            team=call.team,
            project=call.project,
            session_id=self._identifier(call.session_id or _session_header(call)),
            model_served=call.upstream_model if call.provider_name else None,
            provider=call.provider_name,
            route=str(body.get("model", "")) or None,
            variant=call.variant,
            config_version=call.config_version,
            system_prompt_hash=call.system_prompt_hash or system_prompt_hash(body, fmt),
            stop_reason=call.stop_reason,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cache_write_5m_tokens=usage.cache_write_5m_tokens if usage else 0,
            cache_write_1h_tokens=usage.cache_write_1h_tokens if usage else 0,
            cache_read_tokens=usage.cache_read_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            usage_estimated=usage.estimated if usage else False,
            latency_ms=round(latency * 1000, 3),
            ttft_ms=round(ttft * 1000, 3) if ttft is not None else None,
            attempts=call.attempts,
            pool_wait_ms=round(call.pool_wait * 1000, 3) if call.pool_wait else None,
            fallback_used=call.fallback_used,
            cache_hit=call.cache_hit is not None,
            cost_usd=cost.total if cost is not None else None,
            cost_avoided_usd=call.cache_cost_avoided,
            error_type=error_type,
            truncated=call.truncated,
            stream=call.stream,
            structured_output=call.structured_output,
            prompt_text=prompt,
            answer_text=answer,
            metadata=metadata,
            custom_id=call.custom_id,
            guardrails=orjson.dumps(call.guardrails).decode() if call.guardrails else None,
            history_trimmed_messages=trimmed[0],
            history_trimmed_tokens=trimmed[1],
            route_rule=call.route_rule,
            escalated=call.escalated,
            escalated_cost_usd=call.escalation_cost,
            **_billing_columns(usage, cost),
        )

    def _keep(self, text: str) -> str:
        text = text[: self.max_text_chars]
        return text if self.text == "full" else scrub_text(text)

    def _identifier(self, value: str | None) -> str | None:
        """`value`, or its pseudonym when it carries PII; memoised, since the same few
        thousand users and sessions come back call after call."""
        if value is None:
            return None
        known = self._pseudonyms.get(value)
        if known is not None:
            return known
        kept = value[:256]
        if find_pii(kept):
            kept = "pii:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        if len(self._pseudonyms) >= 65_536:
            self._pseudonyms.clear()
        self._pseudonyms[value] = kept
        return kept


def _billing_columns(usage: Usage | None, cost: CallCost | None) -> dict[str, Any]:
    """The record's billing dimensions, server-tool counts and cost lines."""
    columns: dict[str, Any] = {}
    if usage is not None:
        columns.update(
            service_tier=usage.service_tier,
            inference_geo=usage.inference_geo,
            speed=usage.speed,
            audio_input_tokens=usage.audio_input_tokens,
            audio_output_tokens=usage.audio_output_tokens,
            web_search_requests=usage.tool_count("web_search_requests"),
            web_fetch_requests=usage.tool_count("web_fetch_requests"),
        )
    if cost is not None:
        tools = dict(cost.tool_lines)
        others = [line for name, line in cost.tool_lines if name not in _OWN_TOOL_COLUMNS]
        columns.update(
            context_window=cost.context_window,
            input_cost_usd=cost.input,
            output_cost_usd=cost.output,
            cache_write_5m_cost_usd=cost.cache_write_5m,
            cache_write_1h_cost_usd=cost.cache_write_1h,
            cache_read_cost_usd=cost.cache_read,
            audio_cost_usd=cost.audio,
            web_search_cost_usd=tools.get("web_search_requests", _ZERO),
            web_fetch_cost_usd=tools.get("web_fetch_requests", _ZERO),
            other_tool_cost_usd=None if None in others else sum((o for o in others if o), _ZERO),
            commitment_billed=cost.commitment,
        )
    return columns


_OWN_TOOL_COLUMNS = ("web_search_requests", "web_fetch_requests")
_ZERO = Decimal(0)


def _session_header(call: Call) -> str | None:
    headers = call.headers
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None
