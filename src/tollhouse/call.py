"""The one object a call is seen through by every stage, from decoding to accounting."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from tollhouse.accounting import CallCost, Usage
from tollhouse.accounting.usage import Iteration
from tollhouse.types import AdmissionTicket, WireFormat
from tollhouse.wire.formats import FORMATS, Format

if TYPE_CHECKING:
    from tollhouse.observability.tracing import CallTrace
    from tollhouse.stages.lifecycle import LifecycleNotice
    from tollhouse.stages.threads.anthropic_threads import ThreadTurn
    from tollhouse.stages.threads.response_history import ResponseTurn

Endpoint = Literal[
    "messages",
    "count_tokens",
    "chat_completions",
    "responses",
    "embeddings",
    "message_batches",  # one line of an Anthropic Message Batch (src/tollhouse/batches/)
    "batches",  # one line of an OpenAI batch
]


def new_request_id() -> str:
    """`th_` + 12 hex digits of milliseconds since the epoch + 12 random hex digits.

    Time first, so ids sort by arrival and the ledger's unique index on them grows at its
    end instead of at random pages (measured: a random id made each SQLite insert rewrite
    a page of that index). 48 random bits per millisecond keep ids unique across
    processes; they are not secrets, so the PRNG (reseeded by Python after fork) serves.
    """
    return f"th_{time.time_ns() // 1_000_000:012x}{random.getrandbits(48):012x}"


@dataclass(slots=True)
class Call:
    client_format: WireFormat
    endpoint: Endpoint
    body: dict[str, Any]
    raw_body: bytes
    headers: Mapping[str, str]
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)  # for the ledger's timestamp

    # Who the call is for: filled by the auth stage (key) and the request (end user, session).
    key_id: str | None = None
    end_user: str | None = None
    team: str | None = None
    project: str | None = None
    session_id: str | None = None
    variant: str | None = None
    # The config version the call is served by (ports/config), None when none is recorded.
    config_version: int | None = None

    # Set when the call continues or starts a conversation the gateway holds: its body is
    # then the whole conversation (stages/threads/), and its answer is kept for the next turn.
    thread: ThreadTurn | None = None
    response_turn: ResponseTurn | None = None  # the same for a Responses call

    # Set on each line of a batch (src/tollhouse/batches/): the provider's batch id and the
    # line's `custom_id`; the line is priced at the batch rates.
    batch_id: str | None = None
    custom_id: str | None = None

    # Filled by the route stage.
    provider_name: str | None = None
    # On a route of candidates listed cheapest first (stages/route/candidates.py): the
    # rule that chose where the call started ("default": none held), and whether it went
    # on to a dearer candidate (dispatch); with what each answer it moved on from used,
    # as (model, why, usage), for the record to price.
    route_rule: str | None = None
    escalated: bool = False
    escalations: list[tuple[str, str, Usage | None]] = field(default_factory=list)
    # What those answers cost, priced by accounting (None: unknown, or none).
    escalation_cost: Decimal | None = None
    upstream_model: str | None = None
    # Set by its lifecycle check when the model is deprecated or retired: the reply's
    # headers and the record's note (stages/lifecycle.py).
    lifecycle: LifecycleNotice | None = None
    # Request parameters the gateway removed because the model serving the call refuses
    # them (stages/shape/parameter_rules.py); stated in a reply header and the record.
    dropped_params: tuple[str, ...] = ()
    # What the route's input guardrails and untrusted-content marking found, one entry per
    # check (stages/shape/guardrails/runner.py); None when none ran. Names and results,
    # never the request's text: the record's `guardrails` column.
    guardrails: list[dict[str, str]] | None = None
    # Set when the route's history bound dropped messages (stages/shape/history_bound.py):
    # (messages dropped, estimated tokens removed); stated in a reply header and the record.
    history_trimmed: tuple[int, int] | None = None

    # Filled by dispatch.
    upstream_request_id: str | None = None
    status: int | None = None
    deadline: float = 0.0
    attempts: int = 0
    # Seconds the call's attempts waited for a free upstream connection (a provider's
    # max_connections reached), summed; 0.0 when none did.
    pool_wait: float = 0.0
    fallback_used: bool = False
    served_by: str | None = None
    stop_reason: str | None = None
    truncated: bool = False
    degraded: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (deployment, class)
    # Set by the structured-output check (stages/check/structured_output.py): "valid",
    # "retried" (invalid, then valid after its corrective retry) or "invalid", with what was
    # wrong; None when the call's answer was not required to be structured.
    structured_output: str | None = None
    structured_output_errors: str | None = None
    structured_output_retried: bool = False
    # The usage of answers the answer checks sent back for one more attempt (still billed):
    # added to the final answer's as iterations (stages/account.py `note_sent_back`).
    sent_back: tuple[Iteration, ...] = ()
    # The stream fields a buffering route (`structured_output.stream: buffer`) took off the
    # request to ask the upstream for a whole answer, put back before the reply.
    buffered_stream: dict[str, Any] | None = None
    usage: Usage | None = None
    cache_hit: str | None = None  # "hit" or "stale" when answered from the response cache
    # A hit's: what the call that produced the answer cost (None: unpriced), and its id.
    cache_cost_avoided: Decimal | None = None
    cache_source: str | None = None
    cost: CallCost | None = None
    # Set when the gateway asked an OpenAI upstream for stream usage the client did not ask
    # for: the usage chunk is then kept from the client.
    hide_usage_chunk: bool = False
    first_byte_at: float | None = None
    # The last two chunks of a streamed reply sent (references, not copies): where the
    # account stage looks for the error event a broken stream ends with.
    previous_chunk: bytes | None = None
    last_chunk: bytes | None = None
    error_type: str | None = None  # the error's type as the client saw it, when it failed
    # The short hash of the system prompt (accounting/call_text.py), once the account stage
    # computed it for the metrics, so that the record does not hash the prompt again.
    system_prompt_hash: str | None = None
    # The answer as sent, kept only when the ledger stores text (a stream: its first bytes,
    # up to the ledger's text limit), for the record to extract the answer text from.
    answer_capture: bytearray | None = None
    # Filled by request shaping when it had to estimate the prompt (stages/shape), for
    # the policies after it and admission to reuse; None when nobody counted yet.
    input_estimate: int | None = None
    # Set when the gateway lowered the call's max_tokens: (by "cap" | "budget", what the
    # request asked or None when it set none, what was sent); stated in a reply header
    # and the ledger record.
    max_tokens_clamp: tuple[str, int | None, int] | None = None
    # Filled by admission: the reservation to settle when the call ends (stages/admit.py),
    # and "estimated" when an unpriced model was admitted at the configured estimate.
    admission: AdmissionTicket | None = None
    unpriced_admission: str | None = None
    # The call's open spans when tracing is on (observability/tracing.py), else None.
    trace: CallTrace | None = None

    @property
    def model(self) -> str:
        """The model asked for; "" for a call refused before its body could be read."""
        return str(self.body.get("model", ""))

    @property
    def has_output(self) -> bool:
        """Whether the answer is generated tokens (not so for embeddings): what a
        `max_tokens` bounds, clamps and budgets reserve for."""
        return self.endpoint != "embeddings"

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def wire(self) -> Format:
        """The client's wire format, to ask instead of branching on `client_format`."""
        return FORMATS[self.client_format]

    def requested_end_user(self) -> str | None:
        """The end user the request names: `metadata.user_id` (Anthropic), `user` (OpenAI)."""
        return self.wire.end_user(self.body)
