"""The rollout settings of a route: how traffic is split between its variants
(stages/route/variant_split.py), the guardrails that roll a failing canary back and the
steps it is promoted by (tollhouse/rollout/).

Apart from msgspec, this module imports nothing, so that `config/model.py` can hold it
without an import cycle.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

# What a call is kept on its variant by: its end user (`metadata.user_id` / `user`), its
# session (`x-session-id` / `x-tollhouse-session-id`) or its gateway key.
StickyKey = Literal["end_user", "session", "key"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Confidence = Annotated[float, msgspec.Meta(ge=0.5, lt=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class SplitConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a call finds its variant: the first of `sticky` the call has is hashed with the
    route's name and `seed` into one of 10,000 buckets; the variants own consecutive
    ranges of buckets sized by their weights. A call with none of them is split at random,
    per call. Change `seed` to deal the users out anew for a new experiment."""

    sticky: tuple[StickyKey, ...] = ("end_user", "session", "key")
    seed: str = ""


class GuardrailsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a canary (every variant but the control, while its weight is above 0) is held
    to, against the control over the last `window_seconds` (rollout/guardrails.py).

    Nothing is judged before both have `min_calls` calls in the window. Then a guardrail
    breaches only when a one-sided test at `confidence` says the canary is worse than the
    control by more than the allowed margin:
    - error rate (status >= 500, or 429 from upstream) and truncation rate: a two-proportion
      z-test of canary rate > control rate + `*_margin` (absolute);
    - latency p95 and time to first token p95: the canary's p95 lower confidence bound (an
      order statistic) above `*_ratio` times the control's p95 upper bound;
    - cost per call, and the quality score the app posts (`POST /v1/feedback`): a Welch
      z-test of canary mean > `cost_ratio` × control mean, or canary mean < control mean
      − `quality_margin` (scores from 0 to 1, `min_scores` each).
    A breach sets the canary's weight to 0 as a new config version, with an alert."""

    enabled: bool = True
    window_seconds: Positive = 300.0
    min_calls: Annotated[int, msgspec.Meta(ge=10)] = 100
    confidence: Confidence = 0.99
    error_rate_margin: NonNegative = 0.02
    truncation_rate_margin: NonNegative = 0.05
    latency_p95_ratio: Annotated[float, msgspec.Meta(ge=1)] | None = 2.0
    ttft_p95_ratio: Annotated[float, msgspec.Meta(ge=1)] | None = 2.0
    cost_ratio: Annotated[float, msgspec.Meta(ge=1)] | None = 2.0
    quality_margin: NonNegative | None = 0.1
    min_scores: Annotated[int, msgspec.Meta(ge=5)] = 30
    check_interval_seconds: Positive = 5.0


class PromotionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`tollhouse rollout promote ROUTE VARIANT --auto` steps the canary through `steps`
    (percent), one step every `interval_seconds` while every guardrail holds and the
    canary had at least the guardrails' `min_calls` in the window."""

    steps: tuple[Annotated[float, msgspec.Meta(gt=0, le=100)], ...] = (1.0, 10.0, 50.0, 100.0)
    interval_seconds: Positive = 600.0
