"""The admin API over HTTP: gateway keys, and usage and cost reports from the ledger.

    GET   /v1/organizations/usage_report/messages   reports.usage_report, Anthropic-shaped
    GET   /v1/organizations/cost_report             reports.cost_report, Anthropic-shaped
    POST  /admin/keys, GET /admin/keys[?include_revoked=true]
    GET|PATCH /admin/keys/{id}, POST /admin/keys/{id}/revoke, POST /admin/keys/{id}/rotate
    GET   /admin/calls/{request_id}                 one call's ledger record, without its text
    /admin/config/versions, /admin/config/diff, /admin/config/rollback, /admin/config/flags
                                                    config versions and flags
                                                    (config_versions/admin_api.py)
    GET /admin/rollout, POST /admin/rollout/{route}/{variant}/promote|rollback
                                                    variants' status, promotion, rollback
                                                    (rollout/admin_api.py)

Every path under `/admin` and `/v1/organizations` asks for the admin token first (as
`x-api-key`, which Anthropic's admin API uses, or `Authorization: Bearer`), so an
unauthenticated client can't even learn which routes exist. Refusals are raised as gateway
errors and rendered by the HTTP layer like any other: Anthropic-style for the report paths
(Anthropic's shape), in the format the headers suggest for `/admin/keys`.

Admin requests are not model calls: they leave no ledger record, don't count in metrics
and aren't held back by the in-flight limiter, so an operator can still look at a gateway
that is saturated.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from tollhouse.config_versions.admin_api import config_admin
from tollhouse.config_versions.changes import ConfigChanges
from tollhouse.config_versions.watch import VersionWatch
from tollhouse.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from tollhouse.gateway import Gateway
from tollhouse.ports.config.base import ConfigStoreUnavailable
from tollhouse.ports.keys.admin_api import keys_admin
from tollhouse.ports.keys.admin_token import admin_token_from_env, check_admin_token
from tollhouse.ports.keys.base import KeyStore, KeyStoreUnavailable
from tollhouse.ports.keys.key_ring import KeyRing
from tollhouse.ports.ledger.admin_api import calls_admin
from tollhouse.ports.ledger.base import LedgerStore, LedgerUnavailable
from tollhouse.reports import cost_report, usage_report
from tollhouse.reports.params import Params
from tollhouse.rollout.admin_api import rollout_admin
from tollhouse.types import Reply, WireFormat, json_reply

log = logging.getLogger("tollhouse.admin")


class _TokenSource(Enum):
    ENVIRONMENT = "environment"


FROM_ENVIRONMENT: Final = _TokenSource.ENVIRONMENT
"""Read the admin token from `TOLLHOUSE_ADMIN_TOKEN` (`admin_token.admin_token_from_env`)."""

AdminToken = str | _TokenSource | None
"""The admin token itself, `FROM_ENVIRONMENT`, or None: the admin API is disabled."""

ReadBody = Callable[[], Awaitable[bytes]]
Report = Callable[[LedgerStore, Params], Awaitable[dict[str, Any]]]

_REPORTS: dict[str, Report] = {
    "/v1/organizations/usage_report/messages": usage_report,
    "/v1/organizations/cost_report": cost_report,
}
_ANTHROPIC_PREFIX = "/v1/organizations"
_KEYS_PREFIX = "/admin/keys"
_CALLS_PREFIX = "/admin/calls"
_CONFIG_PREFIX = "/admin/config"
_ROLLOUT_PREFIX = "/admin/rollout"
_METHODS_WITH_BODY = ("POST", "PATCH", "PUT")


def is_admin_path(path: str) -> bool:
    """Whether `path` belongs to the admin API (and so needs the admin token)."""
    return any(
        path == root or path.startswith(root + "/") for root in ("/admin", _ANTHROPIC_PREFIX)
    )


def admin_wire_format(path: str) -> WireFormat | None:
    """`anthropic` for the paths that copy Anthropic's admin API; None for the gateway's own
    (`/admin/...`), whose format the caller guesses from the headers as for any path."""
    if path == _ANTHROPIC_PREFIX or path.startswith(_ANTHROPIC_PREFIX + "/"):
        return "anthropic"
    return None


def presented_admin_token(headers: dict[str, str]) -> str | None:
    """The token from `x-api-key`, else from `Authorization: Bearer`; None if neither."""
    token = headers.get("x-api-key", "").strip()
    if token:
        return token
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class AdminApi:
    """Answers admin requests for one gateway. `token` is the admin token, read once here
    when `FROM_ENVIRONMENT`; None disables the admin API: it refuses everything with 401."""

    def __init__(self, gateway: Gateway, token: AdminToken = FROM_ENVIRONMENT) -> None:
        self.gateway = gateway
        self.token = admin_token_from_env() if token is FROM_ENVIRONMENT else token

    async def handle(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: ReadBody,
    ) -> Reply:
        """The reply to one admin request. The token is checked before anything else, the
        body read (bounded by `read_body`) only after. Raises `TollhouseError`s."""
        check_admin_token(presented_admin_token(headers), self.token)
        return await self.answer(method, path, query_string, headers, read_body)

    async def answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: ReadBody,
    ) -> Reply:
        """The reply to an admin request whose caller is known to be allowed (by the admin
        token, or by the dashboard's session: dashboard/http.py)."""
        params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        report = _REPORTS.get(path)
        if report is not None:
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed(f"{method} {path}: only GET is allowed")
            with _unavailable_store_as_503():
                doc = await report(self._ledger_store(), params)
            return _no_store(json_reply(doc))
        if path == _KEYS_PREFIX or path.startswith(_KEYS_PREFIX + "/"):
            body = await json_body(headers, read_body) if method in _METHODS_WITH_BODY else None
            with _unavailable_store_as_503():
                status, doc = await keys_admin(
                    self._key_store(),
                    method,
                    path.removeprefix(_KEYS_PREFIX),
                    body,
                    include_revoked=_flag(params, "include_revoked"),
                    ring=self._key_ring(),
                )
            return _no_store(json_reply(doc, status))
        if path == _CALLS_PREFIX or path.startswith(_CALLS_PREFIX + "/"):
            with _unavailable_store_as_503():
                status, doc = await calls_admin(
                    self._ledger_store(), method, path.removeprefix(_CALLS_PREFIX)
                )
            return _no_store(json_reply(doc, status))
        if path == _CONFIG_PREFIX or path.startswith(_CONFIG_PREFIX + "/"):
            return await self._config(method, path, params, headers, read_body)
        if path == _ROLLOUT_PREFIX or path.startswith(_ROLLOUT_PREFIX + "/"):
            return await self._rollout(method, path, headers, read_body)
        raise NotFound(f"{method} {path}: no such admin endpoint")

    async def _config(
        self,
        method: str,
        path: str,
        params: dict[str, list[str]],
        headers: dict[str, str],
        read_body: ReadBody,
    ) -> Reply:
        versions = self._versions()
        body = await json_body(headers, read_body) if method in _METHODS_WITH_BODY else None
        with _unavailable_store_as_503():
            status, doc = await config_admin(
                ConfigChanges(versions.store),
                method,
                path.removeprefix(_CONFIG_PREFIX),
                body,
                params,
                serving=lambda: self.gateway.config_version,
                on_change=versions.check_now,
            )
        return _no_store(json_reply(doc, status))

    async def _rollout(
        self, method: str, path: str, headers: dict[str, str], read_body: ReadBody
    ) -> Reply:
        versions = self._versions()
        body = await json_body(headers, read_body) if method in _METHODS_WITH_BODY else None
        with _unavailable_store_as_503():
            status, doc = await rollout_admin(
                ConfigChanges(versions.store),
                method,
                path.removeprefix(_ROLLOUT_PREFIX),
                body,
                config=self.gateway.config,
                ledger=self.gateway.ledger.store,
                monitor=self.gateway.guardrails,
                serving=lambda: self.gateway.config_version,
                on_change=versions.check_now,
            )
        return _no_store(json_reply(doc, status))

    def _versions(self) -> VersionWatch:
        versions = self.gateway.versions
        if versions is None:
            raise NotFound(
                "config versions are off on this gateway: they are kept when it serves a "
                "config file (`tollhouse serve -c FILE`)"
            )
        return versions

    def _ledger_store(self) -> LedgerStore:
        store = self.gateway.ledger.store
        if store is None:
            raise NotFound(
                "the ledger is off (ledger.backend: off), so there is no usage or cost to "
                "report; configure a ledger backend to record calls"
            )
        return store

    def _key_store(self) -> KeyStore:
        return self.gateway.keys

    def _key_ring(self) -> KeyRing:
        return self.gateway.key_ring


# What each store's outage is called in the 503 that answers it.
_STORE_NAMES: dict[type[Exception], str] = {
    LedgerUnavailable: "the ledger",
    KeyStoreUnavailable: "the key store",
    ConfigStoreUnavailable: "the config store",
}


@contextmanager
def _unavailable_store_as_503() -> Iterator[None]:
    """A store that can't be reached answers the admin request with 503 naming it."""
    try:
        yield
    except tuple(_STORE_NAMES) as error:
        name = next(name for kind, name in _STORE_NAMES.items() if isinstance(error, kind))
        raise ServiceUnavailable(f"{name} is unavailable: {error}") from None


async def json_body(headers: dict[str, str], read_body: ReadBody) -> dict[str, Any] | None:
    """The body as a JSON object, or None when empty (the routes' defaults apply); the
    dashboard's actions read theirs the same way."""
    content_type = headers.get("content-type")
    if content_type and "json" not in content_type.split(";", 1)[0].lower():
        raise UnsupportedMediaType(
            f"content-type {content_type!r} is not supported; send application/json"
        )
    raw = await read_body()
    if not raw.strip():
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(doc).__name__}")
    return doc


def _flag(params: dict[str, list[str]], name: str) -> bool:
    """A boolean query parameter: `true`/`1`/bare name, `false`/`0`; absent is false."""
    found = params.get(name)
    if not found:
        return False
    value = found[-1].strip().lower()
    if value in ("", "true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise BadRequest(f"{name}: expected true or false, got {found[-1]!r}", param=name)


def _no_store(reply: Reply) -> Reply:
    # Key answers may hold a secret, reports hold spend: no cache along the way keeps them.
    reply.add_header("cache-control", "no-store")
    return reply
