"""Lifecycle check, the last step of routing: what a call to a deprecated or retired model
gets.

A route's model is the catalog entry of its first deployment's upstream model (else of the
route's own name); its state on a day is `Lifecycle.effective_state`. For a model that is

- deprecated: the call goes on, and its answer carries `Deprecation: @<unix seconds>` (RFC
  9745), `Sunset: <HTTP-date>` (RFC 8594) and `x-tollhouse-model-replacement` where those
  are known;
- retired: per the route's `lifecycle` (else the gateway-wide one) the call is refused
  with 404 before any upstream (`refuse`), sent to the catalog's replacement (`remap`,
  stated in `x-tollhouse-model-remapped` and the record) or relayed anyway (`allow`).

Fallback deployments are judged too, each by its own model: when a deployment after the
first serves a retired model, a route that refuses retired models skips it (the chain goes
on without it), one that remaps asks the same provider for the catalog's living successor,
and one that allows keeps it. The route's own state stays its first deployment's.

`GET /v1/models` leaves out the routes whose calls are refused (`refused`), as the
providers' own list endpoints leave out the models they retired.

Each such call bumps `tollhouse_lifecycle_calls{model,state,action}` (`model` is a
configured route name, so the series are bounded) and writes a rate-limited structured
log line. The verdicts are judged once per UTC day for every route of the snapshot; a call
to a model in good standing pays one integer division and one dict miss.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, Metric

from tollhouse.call import Call
from tollhouse.catalog.models import CatalogModel, ModelCatalog
from tollhouse.errors import NotFound
from tollhouse.observability.rate_limited_log import RateLimitedLog
from tollhouse.stages.route import RoutePlan, Router

log = logging.getLogger("tollhouse.lifecycle")

_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# One line per route and outcome a minute: the deprecation is news once, not per call.
_LOG_INTERVAL = 60.0

LifecycleAction = Literal["notice", "refuse", "remap", "allow"]


@dataclass(frozen=True, slots=True)
class LifecycleNotice:
    """What the lifecycle check found for a call: `model` (a catalog id) is `state`; the
    reply headers to send, and the model the call was remapped to, if it was."""

    model: str
    state: Literal["deprecated", "retired"]
    action: LifecycleAction
    retires_on: date | None
    replacement: str | None
    remapped_to: str | None
    headers: tuple[tuple[bytes, bytes], ...]

    def record(self) -> dict[str, Any]:
        """The notice as the ledger record's `lifecycle` metadata."""
        doc: dict[str, Any] = {"model": self.model, "state": self.state, "action": self.action}
        if self.retires_on is not None:
            doc["retires_on"] = self.retires_on.isoformat()
        if self.replacement is not None:
            doc["replacement"] = self.replacement
        if self.remapped_to is not None:
            doc["remapped_to"] = self.remapped_to
        return doc


@dataclass(frozen=True, slots=True)
class _Verdict:
    notice: LifecycleNotice | None  # None: only a fallback deployment was retired
    plan: RoutePlan | None  # None: refuse with `refusal`
    refusal: str
    fields: dict[str, object]


class LifecycleCheck:
    """The lifecycle step of one config snapshot (see the module docstring)."""

    def __init__(
        self,
        router: Router,
        catalog: ModelCatalog,
        *,
        calls: defaultdict[tuple[str, str, str], int] | None = None,
    ) -> None:
        """`calls`: the counts of the snapshot before (a reload), carried on so that
        /metrics counters never go back."""
        self._router = router
        self._catalog = catalog
        self._day = -1
        # By (route, variant): a route's variants may be served by different models.
        self._verdicts: dict[tuple[str, str | None], _Verdict] = {}
        self._log = RateLimitedLog(log, _LOG_INTERVAL)
        self.calls: defaultdict[tuple[str, str, str], int] = (
            defaultdict(int) if calls is None else calls
        )

    def check(self, call: Call, plan: RoutePlan) -> RoutePlan:
        """The plan to serve `call` by: `plan`, or its replacement's; raises `NotFound` when
        the model is retired and the route refuses such calls."""
        verdict = self._today().get((plan.model, plan.variant))
        if verdict is None:
            return plan
        notice = verdict.notice
        if notice is None:
            assert verdict.plan is not None
            return verdict.plan
        call.lifecycle = notice
        self.calls[(plan.model, notice.state, notice.action)] += 1
        self._log.event(
            logging.WARNING, f"{notice.state}_model_called", (plan.model,), verdict.fields
        )
        if verdict.plan is None:
            raise NotFound(verdict.refusal, param="model", code="model_not_found")
        return verdict.plan

    def refused(self, name: str) -> str | None:
        """The refusal a call to route `name` gets today for its retired model, else None."""
        routed = self._router.find(name)
        verdict = self._today().get((name, routed.variant if routed else None))
        if verdict is None or verdict.plan is not None:
            return None
        return verdict.refusal

    def _today(self) -> dict[tuple[str, str | None], _Verdict]:
        day = int(time.time()) // _SECONDS_PER_DAY
        if day != self._day:
            self._verdicts = self._judge(date.fromordinal(_EPOCH_ORDINAL + day))
            self._day = day
        return self._verdicts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "tollhouse_lifecycle_calls",
            "Calls to deprecated or retired models, by route, state and what was done",
            labels=["model", "state", "action"],
        )
        for (model, state, action), n in self.calls.items():
            family.add_metric([model, state, action], n)
        yield family

    def _judge(self, today: date) -> dict[tuple[str, str | None], _Verdict]:
        verdicts = {}
        for routed in self._router.plans():
            name = routed.model
            plan = self._living_fallbacks(routed, today)
            entry = self._catalog.get(plan.targets[0].upstream_model) or self._catalog.get(name)
            verdict = None if entry is None else self._verdict(name, plan, entry, today)
            if verdict is None and plan is not routed:
                verdict = _Verdict(None, plan, "", {})
            if verdict is not None:
                verdicts[(name, plan.variant)] = verdict
        return verdicts

    def _living_fallbacks(self, plan: RoutePlan, today: date) -> RoutePlan:
        """`plan` with its retired fallback deployments (all but the first) skipped,
        remapped to their successor on the same provider or kept, per `plan.lifecycle`;
        `plan` itself when none is retired."""
        targets = [plan.targets[0]]
        changed = False
        for target in plan.targets[1:]:
            entry = self._catalog.get(target.upstream_model)
            retired = entry is not None and entry.lifecycle.effective_state(today) == "retired"
            if entry is None or not retired or plan.lifecycle == "allow":
                targets.append(target)
                continue
            successor = self._successor(entry, today) if plan.lifecycle == "remap" else None
            changed = True
            if successor is not None:
                targets.append(
                    self._router.target(
                        target.provider, successor, plan.parameters, plan.prompt_cache
                    )
                )
            fields: dict[str, object] = {
                "route": plan.model,
                "deployment": target.label,
                "model": entry.id,
            }
            if successor is not None:
                fields["remapped_to"] = successor
            self._log.event(
                logging.WARNING,
                "retired_fallback_remapped" if successor else "retired_fallback_skipped",
                (plan.model, target.label),
                fields,
            )
        return replace(plan, targets=tuple(targets)) if changed else plan

    def _verdict(
        self, name: str, plan: RoutePlan, entry: CatalogModel, today: date
    ) -> _Verdict | None:
        lifecycle = entry.lifecycle
        state = lifecycle.effective_state(today)
        if state not in ("deprecated", "retired"):
            return None
        replacement = lifecycle.replacement
        headers = _notice_headers(entry, replacement)
        fields: dict[str, object] = {
            "route": name,
            "model": entry.id,
            "retires_on": lifecycle.retires_on or "unknown",
            "replacement": replacement or "none",
        }
        if lifecycle.retires_on is not None:
            fields["days_left"] = (lifecycle.retires_on - today).days
        action: LifecycleAction = "notice" if state == "deprecated" else plan.lifecycle
        served: RoutePlan | None = plan
        remapped_to = None
        refusal = ""
        if action == "remap":
            remapped = self._remapped(plan, entry, today)
            if remapped is None:
                action = "refuse"
            else:
                remapped_to, served = remapped
                headers += (
                    (b"x-tollhouse-model-remapped", f"{entry.id} -> {remapped_to}".encode()),
                )
                fields["remapped_to"] = remapped_to
        if action == "refuse":
            served = None
            refusal = _refusal(name, entry, replacement, plan.lifecycle)
        fields["action"] = action
        notice = LifecycleNotice(
            model=entry.id,
            state=state,
            action=action,
            retires_on=lifecycle.retires_on,
            replacement=replacement,
            remapped_to=remapped_to,
            headers=headers,
        )
        return _Verdict(notice, served, refusal, fields)

    def _remapped(
        self, plan: RoutePlan, entry: CatalogModel, today: date
    ) -> tuple[str, RoutePlan] | None:
        """The successor to send a call for retired `entry` to (following replacements that
        retired in turn) and its plan: the route serving it, else `plan`'s deployments with
        the successor's id upstream. None when the catalog names no living successor."""
        successor_id = self._successor(entry, today)
        if successor_id is None:
            return None
        successor = self._catalog.get(successor_id)
        assert successor is not None
        for served_name in (successor.id, *successor.aliases):
            served = self._router.find(served_name)
            if served is not None:
                return successor.id, self._living_fallbacks(served, today)
        targets = tuple(
            self._router.target(target.provider, successor.id, plan.parameters, plan.prompt_cache)
            if target.upstream_model in (entry.id, *entry.aliases)
            else target
            for target in plan.targets
        )
        return successor.id, replace(plan, targets=targets)

    def _successor(self, entry: CatalogModel, today: date) -> str | None:
        """The id of retired `entry`'s living successor (following replacements that
        retired in turn); None when the catalog names none."""
        successor = entry
        for _ in self._catalog.models:
            following = successor.lifecycle.replacement
            successor_entry = None if following is None else self._catalog.get(following)
            if successor_entry is None:
                return None
            successor = successor_entry
            if successor.lifecycle.effective_state(today) != "retired":
                return successor.id
        return None


def _notice_headers(
    entry: CatalogModel, replacement: str | None
) -> tuple[tuple[bytes, bytes], ...]:
    lifecycle = entry.lifecycle
    # RFC 9745 wants the day the deprecation took effect; where the provider's notice date
    # is not known, the day the catalog entry was read said "deprecated" already.
    deprecated_on = lifecycle.deprecated_on or entry.price_as_of or lifecycle.retires_on
    headers: list[tuple[bytes, bytes]] = []
    if deprecated_on is not None:
        headers.append((b"deprecation", f"@{_midnight(deprecated_on)}".encode()))
    if lifecycle.retires_on is not None:
        sunset = datetime.fromtimestamp(_midnight(lifecycle.retires_on), UTC)
        headers.append((b"sunset", format_datetime(sunset, usegmt=True).encode()))
    if replacement is not None:
        headers.append((b"x-tollhouse-model-replacement", replacement.encode()))
    return tuple(headers)


def _midnight(day: date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * _SECONDS_PER_DAY


def _refusal(name: str, entry: CatalogModel, replacement: str | None, action: str) -> str:
    retired = entry.lifecycle.retires_on
    when = f"on {retired.isoformat()}" if retired is not None else "by its provider"
    message = f"model: {name!r} ({entry.id}) was retired {when}"
    if replacement is None:
        return message + "; the catalog names no replacement"
    if action == "remap":
        return message + f"; its replacement {replacement!r} has retired too"
    return message + f"; use its replacement {replacement!r}"
