"""Model retirement notices: an alert when a model the gateway serves nears its retirement
date, at each configured lead time (90, 60, 30 and 7 days by default), once.

"Served" means named by any deployment of any route, fallbacks included, as the catalog
knows it (else the route's own name). A check runs at start and then every
`check_interval_seconds`, off the request path. For a model `d` days from its `retires_on`
(0 < d), the notice due is the tightest lead time `d` has reached: a gateway first started
25 days before a retirement sends the 30-day notice, not the 90- and 60-day ones too.

Once means once per model, retirement date and lead time, whatever restarts: a notice is
sent only by the caller that inserts its key (`model_retirement:<model>:<date>:<lead>d`)
into the ledger's database (`LedgerStore.claim_notice`), so a restart, or another gateway
sharing the PostgreSQL ledger, finds it taken. A retirement date moved by a catalog update
is a new key, so the notices start over for the new date. With the ledger off, the keys
are kept in memory only: a restart may send a notice again. When the database can't be
reached the notice is not sent and the next check tries again.

`collect` yields `tollhouse_model_retirement_days{catalog_model}`: days until each served model
with a known retirement date retires (negative once it has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from prometheus_client.core import Metric

from tollhouse.catalog.models import CatalogModel, ModelCatalog
from tollhouse.observability.alert_rules import AlertEvent
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.alerts_config import ModelRetirementConfig
from tollhouse.observability.metrics import gauge
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.stages.route import Router

log = logging.getLogger("tollhouse.alerts")


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A catalog model and the routes whose deployments name it."""

    entry: CatalogModel
    routes: tuple[str, ...]


def served_models(router: Router, catalog: ModelCatalog) -> list[ServedModel]:
    """Every catalog model a route's deployments name, in route order, with its routes."""
    routes: dict[str, list[str]] = {}
    entries: dict[str, CatalogModel] = {}
    for name in router.models:
        plan = router.find(name)
        assert plan is not None
        for target in plan.targets:
            entry = catalog.get(target.upstream_model) or catalog.get(name)
            if entry is None:
                continue
            entries[entry.id] = entry
            named = routes.setdefault(entry.id, [])
            if name not in named:
                named.append(name)
    return [ServedModel(entries[model], tuple(names)) for model, names in routes.items()]


class RetirementAlerts:
    """See the module docstring. `store` is the ledger's (None when the ledger is off);
    `clock` gives `time.time()` seconds. `start` and `aclose` from the serving loop."""

    def __init__(
        self,
        config: ModelRetirementConfig,
        served: list[ServedModel],
        alerts: Alerts,
        store: LedgerStore | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.served = served
        self._alerts = alerts
        self._store = store
        self._clock = clock
        self._sent_here: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[AlertEvent]:
        """Send the notices due now that nobody sent yet; the events sent."""
        if not self.config.enabled or not self.config.lead_days:
            return []
        now = self._clock()
        today = datetime.fromtimestamp(now, UTC).date()
        sent = []
        for served in self.served:
            due = self._due(served.entry, today)
            if due is None:
                continue
            lead, retires_on = due
            notice = f"model_retirement:{served.entry.id}:{retires_on.isoformat()}:{lead}d"
            if not await self._claim(notice, now):
                continue
            event = _event(served, lead, retires_on, today, now)
            self._alerts.notify(event)
            sent.append(event)
        return sent

    def _due(self, entry: CatalogModel, today: date) -> tuple[int, date] | None:
        retires_on = entry.lifecycle.retires_on
        if retires_on is None:
            return None
        days_left = (retires_on - today).days
        reached = [lead for lead in self.config.lead_days if 0 < days_left <= lead]
        return (min(reached), retires_on) if reached else None

    async def _claim(self, notice: str, now: float) -> bool:
        if notice in self._sent_here:
            return False
        if self._store is not None:
            try:
                claimed = await self._store.claim_notice(notice, datetime.fromtimestamp(now, UTC))
            except Exception as error:  # tried again at the next check
                log.warning("model retirement notice %s not sent: %s", notice, error)
                return False
            if not claimed:
                self._sent_here.add(notice)
                return False
        self._sent_here.add(notice)
        return True

    def start(self) -> None:
        if self._task is None and self.config.enabled and self.served:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._check_forever(), name="retirement-alerts")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def collect(self) -> Iterator[Metric]:
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        yield gauge(
            "tollhouse_model_retirement_days",
            "Days until a model the routes serve retires (negative: retired), by catalog id",
            ["catalog_model"],
            (
                ([served.entry.id], float((retires_on - today).days))
                for served in self.served
                if (retires_on := served.entry.lifecycle.retires_on) is not None
            ),
        )

    async def _check_forever(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a fault here must not end the checks
                log.exception("model retirement check failed")
            await asyncio.sleep(self.config.check_interval_seconds)


def _event(served: ServedModel, lead: int, retires_on: date, today: date, now: float) -> AlertEvent:
    entry = served.entry
    days_left = (retires_on - today).days
    replacement = entry.lifecycle.replacement
    message = (
        f"Model {entry.id} (routes: {', '.join(served.routes)}) retires on "
        f"{retires_on.isoformat()}, in {days_left} day{'s' if days_left != 1 else ''}"
        + (f"; replacement: {replacement}" if replacement else "; no replacement named")
    )
    return AlertEvent(
        kind="model_retirement",
        status="firing",
        message=message,
        at=now,
        details={
            "model": entry.id,
            "routes": list(served.routes),
            "retires_on": retires_on.isoformat(),
            "days_left": days_left,
            "lead_days": lead,
            "replacement": replacement,
            "state": entry.lifecycle.effective_state(today),
        },
    )
