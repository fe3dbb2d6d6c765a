"""The admin API's config routes, as one pure handler the HTTP layer calls after checking
the admin token:

    GET  /admin/config/versions[?limit=N&before=V]   history, newest first (no documents)
    POST /admin/config/versions                      apply: {"document": {...}, "note": "…"}
    GET  /admin/config/versions/{V}                  one version, with its document
    GET  /admin/config/diff?from=V1[&to=V2]          {"diff": unified diff text}
    POST /admin/config/rollback                      {"to": V, "note": "…"}, both optional
    GET  /admin/config/flags                         the newest version's flags
    PUT  /admin/config/flags/{NAME}                  {"value": …, "note": "…"}

Every answer names `serving`, the version this gateway serves. A change is stored, then
this gateway swaps to it at once (`on_change`), the others within their poll interval.
A document the loader refuses is a 400 whose message names the key; a change based on a
version that is no longer the newest a 409. Documents hold secrets as references only, so
no answer here can hold a secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from tollhouse.config import ConfigError
from tollhouse.config.flags import FlagValue
from tollhouse.config_versions.changes import Applied, ConfigChanges
from tollhouse.errors import BadRequest, MethodNotAllowed, NotFound


class ApplyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    document: dict[str, Any]
    note: str = ""


class RollbackBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    to: int | None = None
    note: str = ""


class FlagBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    value: FlagValue
    note: str = ""


async def config_admin(
    changes: ConfigChanges,
    method: str,
    subpath: str,
    body: dict[str, Any] | None,
    params: dict[str, list[str]],
    *,
    serving: Callable[[], int | None],
    on_change: Callable[[], Awaitable[object]],
) -> tuple[int, dict[str, Any]]:
    """Answer one admin request on config versions: (HTTP status, JSON body). `subpath`
    is the path after `/admin/config`; `serving()` the version served now; `on_change()`
    makes this gateway serve the newest version."""
    parts = [part for part in subpath.split("/") if part]
    method = method.upper()
    route = parts[0] if parts else ""
    if route == "versions" and len(parts) == 1:
        if method == "GET":
            versions = await changes.store.history(
                limit=_int(params, "limit", 50), before=_int_or_none(params, "before")
            )
            return 200, {
                "serving": serving(),
                "versions": [version.summary() for version in versions],
            }
        if method == "POST":
            apply = decode_body(body, ApplyBody)
            applied = await refusing_bad_config(
                changes.apply(apply.document, source="admin", note=apply.note)
            )
            return await changed_answer(applied, serving, on_change)
        raise MethodNotAllowed(f"{method} /admin/config/versions: use GET or POST")
    if route == "versions" and len(parts) == 2:
        only_method(method, "GET", "/admin/config/versions/{id}")
        version = await changes.store.get(_version_id(parts[1]))
        return 200, {**version.summary(), "document": version.document, "serving": serving()}
    if route == "diff" and len(parts) == 1:
        only_method(method, "GET", "/admin/config/diff")
        old = _int_or_none(params, "from")
        if old is None:
            raise BadRequest("from: the version to compare from is required", param="from")
        text = await changes.diff(old, _int_or_none(params, "to"))
        return 200, {"diff": text, "serving": serving()}
    if route == "rollback" and len(parts) == 1:
        only_method(method, "POST", "/admin/config/rollback")
        rollback = decode_body(body, RollbackBody)
        applied = await refusing_bad_config(changes.rollback(rollback.to, note=rollback.note))
        return await changed_answer(applied, serving, on_change)
    if route == "flags" and len(parts) == 1:
        only_method(method, "GET", "/admin/config/flags")
        newest, flags = await changes.flags()
        return 200, {"version": newest, "flags": flags, "serving": serving()}
    if route == "flags" and len(parts) == 2:
        only_method(method, "PUT", "/admin/config/flags/{name}")
        flag = decode_body(body, FlagBody)
        applied = await refusing_bad_config(
            changes.set_flag(parts[1], flag.value, source="admin", note=flag.note)
        )
        return await changed_answer(applied, serving, on_change)
    raise NotFound(f"no admin route /admin/config{subpath}")


async def changed_answer(
    applied: Applied, serving: Callable[[], int | None], on_change: Callable[[], Awaitable[object]]
) -> tuple[int, dict[str, Any]]:
    """The answer to a change: this gateway swapped to it first; 201 when it made a new
    version, 200 when the newest already had its content."""
    await on_change()
    return (201 if applied.created else 200), {**applied.as_json(), "serving": serving()}


async def refusing_bad_config(change: Awaitable[Applied]) -> Applied:
    """`change`'s outcome; a document the loader refuses becomes a 400 naming the key."""
    try:
        return await change
    except ConfigError as error:
        raise BadRequest(f"config refused: {error}") from None


def only_method(method: str, allowed: str, route: str) -> None:
    """`MethodNotAllowed` unless `method` is `allowed` on `route`."""
    if method != allowed:
        raise MethodNotAllowed(f"{method} {route}: use {allowed}")


def _version_id(text: str) -> int:
    if not text.isdigit():
        raise NotFound(f"no config version {text!r}: versions are numbered from 1")
    return int(text)


def _int_or_none(params: dict[str, list[str]], name: str) -> int | None:
    found = params.get(name)
    if not found:
        return None
    if not found[-1].isdigit():
        raise BadRequest(f"{name}: expected a whole number, got {found[-1]!r}", param=name)
    return int(found[-1])


def _int(params: dict[str, list[str]], name: str, default: int) -> int:
    value = _int_or_none(params, name)
    if value is None:
        return default
    if not 1 <= value <= 1000:
        raise BadRequest(f"{name}: expected 1..1000, got {value}", param=name)
    return value


def decode_body(body: dict[str, Any] | None, kind: type[Any]) -> Any:
    """`body` (None: empty) as a `kind`; a 400 saying what is wrong when it is not one."""
    try:
        return msgspec.convert(body or {}, kind)
    except msgspec.ValidationError as error:
        raise BadRequest(f"invalid request body: {error}") from None
