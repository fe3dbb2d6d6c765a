"""The request policies of the shaping step, in the order they run: the one place that
lists them (as Starlette's `build_middleware_stack` lists its middleware)."""

from __future__ import annotations

from tollhouse.stages.shape.history_bound import HistoryBoundPolicy
from tollhouse.stages.shape.history_summary import HistorySummaries
from tollhouse.stages.shape.input_guardrails import InputGuardrailsPolicy
from tollhouse.stages.shape.input_limits import InputLimitsPolicy
from tollhouse.stages.shape.parameter_rules import ParameterRulesPolicy
from tollhouse.stages.shape.policy import RequestPolicy
from tollhouse.stages.shape.untrusted_content import UntrustedContentPolicy
from tollhouse.stages.shape.variant_request import VariantRequestPolicy


def request_policies(summaries: HistorySummaries | None = None) -> tuple[RequestPolicy, ...]:
    """The policies every call (but `count_tokens`) passes through, first to last. A
    policy with settings of its own takes them from the gateway's config here; `summaries`
    writes history summaries (without, bounds apply without them).

    The history bound comes before the input limits: a conversation it can bring within
    the route's budget is trimmed, not refused. Input guardrails come after the input
    limits (a request too large is refused before a moderation endpoint is paid to read
    it) and before untrusted-content marking (a redaction is made before the text is
    wrapped and scanned)."""
    return (
        VariantRequestPolicy(),
        ParameterRulesPolicy(),
        HistoryBoundPolicy(summaries),
        InputLimitsPolicy(),
        InputGuardrailsPolicy(),
        UntrustedContentPolicy(),
    )
