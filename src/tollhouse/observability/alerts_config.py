"""The `alerts` section of the gateway config.

Apart from msgspec, this module imports nothing, so that `config/model.py` can hold it
without an import cycle (the alert machinery itself imports `tollhouse.config.secrets`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

# `canary_rollback`: a guardrail set a route's canary back to 0 % (rollout/monitor.py).
# `prompt_cache_floor`: a route's prompt-cache hit ratio fell under the floor its config sets
# (observability/prompt_cache_watch.py).
AlertKind = Literal[
    "error_spike",
    "cost_anomaly",
    "budget",
    "model_retirement",
    "canary_rollback",
    "prompt_cache_floor",
]
ALL_KINDS: tuple[AlertKind, ...] = (
    "error_spike",
    "cost_anomaly",
    "budget",
    "model_retirement",
    "canary_rollback",
    "prompt_cache_floor",
)

Positive = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]


class ErrorSpikeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An error is an upstream or gateway failure (the caller decides: status >= 500, or a
    429 that came from upstream). Fewer than `min_calls` calls in the window are too few to
    judge: they never fire, and they count as healthy for recovery, so an alert does not
    stay active forever once traffic stops."""

    enabled: bool = True
    window_seconds: Positive = 60.0
    min_calls: Annotated[int, msgspec.Meta(ge=1)] = 20
    error_rate: Fraction = 0.5


class CostAnomalyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fires when the spend of the current bucket exceeds `factor` times the trailing mean
    AND is at least `min_spend_usd`.

    The trailing mean is taken over the buckets seen since the gateway started, at most
    `trailing_buckets` of them; buckets from before the start are unknown, not zero, so they
    are not averaged in (that would make any spend look anomalous after a restart). Quiet
    buckets since the start do count, as zero. The first bucket has no history and never
    fires; `min_spend_usd` keeps a near-zero history from firing on a few cents."""

    enabled: bool = True
    bucket_seconds: Positive = 3600.0
    trailing_buckets: Annotated[int, msgspec.Meta(ge=1)] = 24
    factor: Annotated[float, msgspec.Meta(gt=1)] = 3.0
    min_spend_usd: Decimal = Decimal("1.0")

    def __post_init__(self) -> None:
        if self.min_spend_usd < 0:
            raise ValueError("min_spend_usd must be >= 0")


class BudgetAlertConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Fractions of a budget's limit; each is notified once per scope and period."""

    thresholds: tuple[Positive, ...] = (0.5, 0.8, 1.0)


class ModelRetirementConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A notice when a model a route serves (any deployment of it) is `lead_days` or fewer
    days from its retirement date: once per model, date and lead time, checked at start
    and every `check_interval_seconds`. The notices sent are claimed in the ledger's
    database, so neither a restart nor another gateway on the same database sends one
    again (observability/retirement_alerts.py)."""

    enabled: bool = True
    lead_days: tuple[Annotated[int, msgspec.Meta(ge=1)], ...] = (90, 60, 30, 7)
    check_interval_seconds: Positive = 3600.0


class WebhookConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`url` and each header value: a literal or a secret reference (`env:`/`file:`).
    `timeout_seconds` bounds one attempt, connection included."""

    url: str
    headers: dict[str, str] = {}
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    kinds: tuple[AlertKind, ...] = ALL_KINDS
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] = 4


class AlertsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `alerts` section. Empty, it alerts to the log and `/metrics` only."""

    webhooks: tuple[WebhookConfig, ...] = ()
    error_spike: ErrorSpikeConfig = ErrorSpikeConfig()
    cost_anomaly: CostAnomalyConfig = CostAnomalyConfig()
    budget: BudgetAlertConfig = BudgetAlertConfig()
    model_retirement: ModelRetirementConfig = ModelRetirementConfig()
