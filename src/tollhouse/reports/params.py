"""Reading the query parameters the Usage & Cost reports share, the way Anthropic's Admin
API reads them; every refusal is a `BadRequest` naming the parameter.

Time is cut into UTC buckets of `bucket_width`: `starting_at` is snapped down to the start
of its bucket, and buckets run until `ending_at` (default: now). A page holds at most
`limit` buckets; `next_page` is an opaque cursor holding the start of the next page's first
bucket (`page_` + URL-safe base64 of its RFC 3339 time, the shape Anthropic's cursors have).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tollhouse.errors import BadRequest
from tollhouse.ports.ledger.base import BucketWidth

Params = Mapping[str, Sequence[str]]

WIDTHS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
_PAGE_PREFIX = "page_"


@dataclass(frozen=True, slots=True)
class Window:
    """The buckets one page of a report covers, and where the next page starts."""

    width: BucketWidth
    buckets: list[datetime]  # starts of this page's buckets, in order
    until: datetime  # records are counted while ts < until
    next_page: str | None

    @property
    def since(self) -> datetime:
        return self.buckets[0]

    def bucket_end(self, start: datetime) -> datetime:
        return start + WIDTHS[self.width]


def values(params: Params, name: str) -> list[str]:
    """Every value of an array parameter, sent as `name[]=` or as `name=`."""
    return [*params.get(f"{name}[]", ()), *params.get(name, ())]


def single(params: Params, name: str) -> str | None:
    found = params.get(name, ())
    if len(found) > 1:
        raise BadRequest(f"{name}: expected one value, got {len(found)}", param=name)
    return found[0] if found else None


def timestamp(params: Params, name: str) -> datetime | None:
    """An RFC 3339 date-time with its offset, as an aware UTC datetime."""
    text = single(params, name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or "T" not in text.upper() or moment.utcoffset() is None:
        message = f"{name}: expected an RFC 3339 date-time with offset, got {text!r}"
        raise BadRequest(message, param=name)
    return moment.astimezone(UTC)


def bucket_width(params: Params, allowed: Sequence[str], default: str) -> BucketWidth:
    width = single(params, "bucket_width") or default
    if width not in allowed:
        message = f"bucket_width: expected one of {', '.join(allowed)}, got {width!r}"
        raise BadRequest(message, param="bucket_width")
    return _as_width(width)


def limit(params: Params, default: int, maximum: int) -> int:
    text = single(params, "limit")
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise BadRequest(f"limit: expected 1 to {maximum}, got {text!r}", param="limit")
    return value


def window(params: Params, width: BucketWidth, page_size: int, now: datetime) -> Window:
    """The buckets of the page asked for: from `page` (or snapped `starting_at`), at most
    `page_size` of them, none starting at or after `ending_at` (default `now`)."""
    starting_at = timestamp(params, "starting_at")
    if starting_at is None:
        raise BadRequest("starting_at: required", param="starting_at")
    ending_at = timestamp(params, "ending_at")
    if ending_at is not None and ending_at <= starting_at:
        raise BadRequest("ending_at: must be after starting_at", param="ending_at")
    step = WIDTHS[width]
    first = snap(starting_at, width)
    until = ending_at or max(now, starting_at)
    start = first
    cursor = single(params, "page")
    if cursor is not None:
        start = _page_start(cursor)
        if start < first or start >= until or (start - first) % step:
            raise BadRequest("page: not a cursor of this report", param="page")
    buckets: list[datetime] = []
    while len(buckets) < page_size and start < until:
        buckets.append(start)
        start += step
    if not buckets:  # starting_at == now: the bucket now running
        buckets.append(first)
        start = first + step
    return Window(
        width=width,
        buckets=buckets,
        until=min(until, start),
        next_page=_page_token(start) if start < until else None,
    )


def snap(moment: datetime, width: BucketWidth) -> datetime:
    """The start of the UTC bucket holding `moment`."""
    if width == "1d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if width == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _as_width(width: str) -> BucketWidth:
    if width == "1m":
        return "1m"
    if width == "1h":
        return "1h"
    return "1d"


def _page_token(start: datetime) -> str:
    return _PAGE_PREFIX + base64.urlsafe_b64encode(rfc3339(start).encode()).decode()


def _page_start(token: str) -> datetime:
    try:
        if not token.startswith(_PAGE_PREFIX):
            raise ValueError(token)
        text = base64.urlsafe_b64decode(token.removeprefix(_PAGE_PREFIX).encode()).decode()
        start = datetime.fromisoformat(text)
        if start.utcoffset() is None:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadRequest("page: not a cursor of this report", param="page") from error
    return start.astimezone(UTC)


# Report name -> ledger column, for the dimensions both reports group and filter by.
DIMENSIONS: dict[str, str] = {
    "api_key_id": "key_id",
    "model": "model_served",
    "model_requested": "model_requested",
    "end_user": "end_user",
    "team": "team",
    "project": "project",
    "provider": "provider",
    "route": "route",
    "variant": "variant",
    "config_version": "config_version",
    "system_prompt": "system_prompt_hash",
    "service_tier": "service_tier",
    "context_window": "context_window",
    "inference_geo": "inference_geo",
    "speed": "speed",
}
_FILTERS: dict[str, str] = {
    "models": "model_served",
    "api_key_ids": "key_id",
    "end_users": "end_user",
    "teams": "team",
    "projects": "project",
    "providers": "provider",
    "routes": "route",
    "variants": "variant",
    "config_versions": "config_version",
    "system_prompts": "system_prompt_hash",
    "service_tiers": "service_tier",
    "context_window": "context_window",
    "inference_geos": "inference_geo",
    "speeds": "speed",
}
# Anthropic filters on things a gateway doesn't have; answering them with everything would
# mislead, so they are refused.
_UNSUPPORTED_FILTERS = (
    "account_ids",
    "service_account_ids",
    "workspace_ids",
)


def group_by(params: Params, always_null: Sequence[str]) -> list[str]:
    """The `group_by[]` names asked for, each in `DIMENSIONS` or in `always_null` (Anthropic
    dimensions accepted for compatibility, reported as null)."""
    names = values(params, "group_by")
    for name in names:
        if name not in DIMENSIONS and name not in always_null:
            known = ", ".join([*always_null, *DIMENSIONS])
            raise BadRequest(f"group_by: unknown {name!r}; one of {known}", param="group_by")
    return list(dict.fromkeys(names))


def filters(params: Params) -> dict[str, list[str | None]]:
    """The ledger filters of the `models[]`, `api_key_ids[]`... parameters."""
    for name in _UNSUPPORTED_FILTERS:
        if values(params, name):
            raise BadRequest(f"{name}: not supported by this gateway", param=name)
    allowed: dict[str, list[str | None]] = {}
    for name, column in _FILTERS.items():
        found = values(params, name)
        if found:
            allowed[column] = list(found)
    return allowed
