"""The admin API's rollout routes, as one pure handler the HTTP layer calls after checking
the admin token — the same library as `tollhouse rollout`:

    GET  /admin/rollout                              every route with variants: weights,
                                                     guardrail figures, the last change
    POST /admin/rollout/{route}/{variant}/promote    {"to": P, "note": "…", "require_eval": "SUITE"}
    POST /admin/rollout/{route}/{variant}/rollback   {"note": "…"}: the canary to 0 %

A promotion or rollback is a new config version made by `ConfigChanges`, so it is checked
as any applied version is; this gateway serves it at once (`on_change`), the others within
their poll interval. Answers name `serving`, the version this gateway serves.
`require_eval` refuses the step (400) unless that eval suite passed for the newest version
and the variant. The status reads the calls of each route's guardrail window from the
ledger (`None`: off, no figures); the quality score comes from this gateway's monitor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote

import msgspec

from tollhouse.config import GatewayConfig
from tollhouse.config_versions.admin_api import (
    changed_answer,
    decode_body,
    only_method,
    refusing_bad_config,
)
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.errors import NotFound
from tollhouse.ports.ledger.base import LedgerStore
from tollhouse.rollout.monitor import GuardrailMonitor
from tollhouse.rollout.promotion import eval_gate, promote, set_weight
from tollhouse.rollout.status import newest_status


class PromoteBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to: Annotated[float, msgspec.Meta(ge=0, le=100)]
    note: str = ""
    require_eval: str | None = None


class RollbackBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: str = ""


async def rollout_admin(
    changes: ConfigChanges,
    method: str,
    subpath: str,
    body: dict[str, Any] | None,
    *,
    config: GatewayConfig,
    ledger: LedgerStore | None,
    monitor: GuardrailMonitor | None,
    serving: Callable[[], int | None],
    on_change: Callable[[], Awaitable[object]],
) -> tuple[int, dict[str, Any]]:
    """Answer one admin request on rollouts: (HTTP status, JSON body). `subpath` is the
    path after `/admin/rollout`; `config` the served config (where eval results are)."""
    parts = [unquote(part) for part in subpath.split("/") if part]
    method = method.upper()
    if not parts:
        only_method(method, "GET", "/admin/rollout")
        status = await newest_status(changes, ledger, datetime.now(UTC), monitor)
        return 200, {**status, "serving": serving()}
    if len(parts) != 3 or parts[2] not in ("promote", "rollback"):
        raise NotFound(
            f"no admin route /admin/rollout{subpath}: use /admin/rollout, or "
            "/admin/rollout/{route}/{variant}/promote|rollback"
        )
    route, variant, action = parts
    only_method(method, "POST", f"/admin/rollout/{{route}}/{{variant}}/{action}")
    if action == "promote":
        step = decode_body(body, PromoteBody)
        gate = None if step.require_eval is None else eval_gate(config, step.require_eval)
        change = promote(
            changes, route, variant, step.to, note=step.note, source="admin", require_eval=gate
        )
    else:
        back = decode_body(body, RollbackBody)
        note = back.note or f"roll back {route}/{variant} to 0 %"
        change = set_weight(changes, route, variant, 0, source="admin", note=note)
    return await changed_answer(await refusing_bad_config(change), serving, on_change)
