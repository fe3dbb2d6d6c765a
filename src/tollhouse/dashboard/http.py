"""The dashboard over HTTP, every path under `/dashboard`:

    GET    /dashboard                      the page (static: it holds no data)
    GET    /dashboard/static/{file}        its script, style and the vendored chart library
    POST   /dashboard/session              {"token": "…"} -> the session cookie, role, CSRF token
    GET    /dashboard/session              the signed-in role and CSRF token, else 401
    DELETE /dashboard/session              sign out (CSRF)
    GET    /dashboard/api/overview|budgets|rollouts|lifecycle|evals|calls|keys
                                       (rollouts and keys: the admin API's own answers)
    GET    /dashboard/api/calls/{id}       one call, every field
    POST   /dashboard/api/calls/{id}/replay                     (admin, CSRF)
    POST   /dashboard/api/rollouts/promote {route, variant, to}  (admin, CSRF)
    POST   /dashboard/api/rollouts/rollback {route, variant}     (admin, CSRF)
    POST   /dashboard/api/keys/{id}/revoke                      (admin, CSRF)

Every answer carries a strict Content-Security-Policy (scripts, styles and connections
from this origin only: no inline script, no `eval`, no framing) and `no-store`. Every
data path needs a session; every action also the admin role, the session's CSRF token in
`x-csrf-token`, and, when the browser sends an `Origin`, this origin. The page renders
every stored text with `textContent`, never as HTML (static/app.js).
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from tollhouse.config.secrets import resolve_secret
from tollhouse.dashboard import calls, views
from tollhouse.dashboard.sessions import COOKIE, Session, Sessions, SignInRefused
from tollhouse.errors import (
    AuthError,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TollhouseError,
)
from tollhouse.gateway import Gateway
from tollhouse.ports.config.base import ConfigStoreUnavailable
from tollhouse.ports.keys.base import KeyStoreUnavailable
from tollhouse.ports.ledger.base import LedgerUnavailable
from tollhouse.server.admin import AdminApi, ReadBody, json_body
from tollhouse.types import Reply, json_reply

PREFIX = "/dashboard"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
)
_READ_VIEWS = ("overview", "budgets", "rollouts", "lifecycle", "evals", "calls", "keys")


def is_dashboard_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _static_files() -> dict[str, tuple[bytes, bytes]]:
    """Every file shipped in `static/`, by its path there: (content, content type)."""
    found: dict[str, tuple[bytes, bytes]] = {}
    root = resources.files("tollhouse.dashboard") / "static"

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                walk(entry, name + "/")
            elif not name.endswith(".md"):
                kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith("javascript"):
                    kind += "; charset=utf-8"
                found[name] = (entry.read_bytes(), kind.encode())

    walk(root, "")
    return found


class DashboardHttp:
    """Answers `/dashboard` requests for one gateway; `admin` is its admin API, whose token
    signs in as admin and whose routes serve the views that exist there already."""

    def __init__(self, gateway: Gateway, admin: AdminApi) -> None:
        settings = gateway.config.dashboard
        read_only = None
        if settings.read_only_token is not None:
            read_only = resolve_secret(
                settings.read_only_token, key_path="dashboard.read_only_token"
            )
        self.gateway = gateway
        self.admin = admin
        self.enabled = settings.enabled
        token = admin.token if isinstance(admin.token, str) else None
        self.sessions = Sessions(
            token,
            read_only,
            lifetime=settings.session_seconds,
            max_ended=settings.max_sessions,
        )
        self.files = _static_files()

    async def handle(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: ReadBody,
        *,
        secure: bool,
        request_id: str,
    ) -> Reply:
        """The reply to one dashboard request, errors included (as Anthropic-style JSON
        bodies with the right status), always with the security headers."""
        try:
            reply = await self._answer(method, path, query_string, headers, read_body, secure)
        except TollhouseError as error:
            reply = Reply(
                status=error.status_for("anthropic"), body=error.body("anthropic", request_id)
            )
            for name, value in error.headers.items():
                reply.add_header(name, value)
        for name, value in _SECURITY_HEADERS:
            reply.add_header(name, value)
        return reply

    async def _answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: ReadBody,
        secure: bool,
    ) -> Reply:
        if not self.enabled:
            raise NotFound("the dashboard is off (dashboard.enabled: false)")
        rest = path.removeprefix(PREFIX)
        if rest in ("", "/"):
            _only(method, "GET", path)
            return self._file("index.html")
        if rest.startswith("/static/"):
            _only(method, "GET", path)
            return self._file(rest.removeprefix("/static/"))
        if rest == "/session":
            return await self._session(method, headers, read_body, secure)
        if not rest.startswith("/api/"):
            raise NotFound(f"{method} {path}: no such dashboard page")
        session = self._signed_in(headers)
        parts = [unquote(part) for part in rest.removeprefix("/api/").split("/") if part]
        params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        try:
            if method in ("GET", "HEAD"):
                return json_reply(await self._view(parts, params))
            self._may_act(session, method, headers)
            return json_reply(await self._act(parts, headers, read_body))
        except LedgerUnavailable as error:
            raise ServiceUnavailable(f"the ledger is unavailable: {error}") from None
        except KeyStoreUnavailable as error:
            raise ServiceUnavailable(f"the key store is unavailable: {error}") from None
        except ConfigStoreUnavailable as error:
            raise ServiceUnavailable(f"the config store is unavailable: {error}") from None

    def _file(self, name: str) -> Reply:
        found = self.files.get(name)
        if found is None:
            raise NotFound(f"no dashboard file {name!r}")
        content, kind = found
        return Reply(status=200, body=content, content_type=kind)

    async def _session(
        self, method: str, headers: dict[str, str], read_body: ReadBody, secure: bool
    ) -> Reply:
        if method == "POST":
            _same_origin(headers)
            body = await json_body(headers, read_body) or {}
            token = body.get("token")
            if not isinstance(token, str) or not token.strip():
                raise BadRequest("token: the admin token or the dashboard token", param="token")
            if not self.sessions.enabled:
                raise AuthError(
                    "the dashboard has no way in: set TOLLHOUSE_ADMIN_TOKEN or "
                    "dashboard.read_only_token"
                )
            try:
                session, cookie = self.sessions.sign_in(token)
            except SignInRefused as refused:
                if refused.throttled:
                    raise RateLimited(str(refused), headers={"retry-after": "60"}) from None
                raise PermissionDenied(str(refused)) from None
            reply = json_reply(_session_doc(session))
            reply.add_header("set-cookie", self._cookie(cookie, secure))
            return reply
        session = self._signed_in(headers)
        if method == "GET":
            return json_reply(_session_doc(session))
        if method == "DELETE":
            self._may_act(session, method, headers, admin_only=False)
            self.sessions.sign_out(session)
            reply = json_reply({"signed_out": True})
            reply.add_header("set-cookie", self._cookie("", secure, max_age=0))
            return reply
        raise MethodNotAllowed(f"{method} /dashboard/session: use GET, POST or DELETE")

    def _cookie(self, value: str, secure: bool, *, max_age: int | None = None) -> str:
        age = int(self.sessions.lifetime) if max_age is None else max_age
        cookie = f"{COOKIE}={value}; Path={PREFIX}; Max-Age={age}; HttpOnly; SameSite=Strict"
        return cookie + ("; Secure" if secure else "")

    def _signed_in(self, headers: dict[str, str]) -> Session:
        session = self.sessions.check(_cookie_value(headers.get("cookie", "")))
        if session is None:
            raise AuthError("sign in first: POST /dashboard/session with a token")
        return session

    def _may_act(
        self, session: Session, method: str, headers: dict[str, str], *, admin_only: bool = True
    ) -> None:
        _same_origin(headers)
        if not self.sessions.csrf_valid(session, headers.get("x-csrf-token")):
            raise PermissionDenied(f"{method}: missing or wrong x-csrf-token")
        if admin_only and session.role != "admin":
            raise PermissionDenied("this session is read-only: sign in with the admin token to act")

    async def _view(self, parts: list[str], params: dict[str, list[str]]) -> dict[str, Any]:
        now = datetime.now(UTC)
        gateway = self.gateway
        view = parts[0] if parts else ""
        if view not in _READ_VIEWS:
            raise NotFound(f"no dashboard view {view!r}; views: {', '.join(_READ_VIEWS)}")
        if view == "calls" and len(parts) == 2:
            return await calls.call_detail(gateway, parts[1])
        if len(parts) != 1:
            raise NotFound(f"no dashboard data at {'/'.join(parts)!r}")
        if view == "overview":
            return await views.overview(gateway, params, now)
        if view == "budgets":
            return await views.budgets(gateway, now)
        if view == "rollouts":
            if gateway.versions is None:
                return {"routes": [], "note": views.NO_VERSIONS}
            return await self._admin("GET", "/admin/rollout")
        if view == "lifecycle":
            return await views.lifecycle(gateway, params, now)
        if view == "evals":
            return await views.evals(gateway, params)
        if view == "keys":
            doc = await self._admin("GET", "/admin/keys")
            keys = doc["keys"]
            return {"keys": keys[: views.MAX_KEYS_SHOWN], "more": len(keys) > views.MAX_KEYS_SHOWN}
        return await calls.calls_page(gateway, params)

    async def _act(
        self, parts: list[str], headers: dict[str, str], read_body: ReadBody
    ) -> dict[str, Any]:
        if len(parts) == 3 and parts[0] == "calls" and parts[2] == "replay":
            return await calls.replay(self.gateway, parts[1])
        if len(parts) == 3 and parts[0] == "keys" and parts[2] == "revoke":
            return await self._admin("POST", f"/admin/keys/{parts[1]}/revoke")
        if len(parts) == 2 and parts[0] == "rollouts" and parts[1] in ("promote", "rollback"):
            body = await json_body(headers, read_body) or {}
            route, variant = body.pop("route", None), body.pop("variant", None)
            if (
                not isinstance(route, str)
                or not isinstance(variant, str)
                or not route
                or not variant
            ):
                raise BadRequest("route and variant: the names of a route and of its variant")
            where = f"/admin/rollout/{quote(route, safe='')}/{quote(variant, safe='')}/{parts[1]}"
            return await self._admin("POST", where, body)
        raise NotFound(f"no dashboard action at {'/'.join(parts)!r}")

    async def _admin(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The answer of the admin API's route that serves this already."""
        raw = b"" if body is None else orjson.dumps(body)

        async def read_body() -> bytes:
            return raw

        headers = {"content-type": "application/json"}
        reply = await self.admin.answer(method, path, b"", headers, read_body)
        doc: dict[str, Any] = orjson.loads(reply.body)
        return doc


def _session_doc(session: Session) -> dict[str, Any]:
    return {
        "role": session.role,
        "csrf_token": session.csrf,
        "expires_at": datetime.fromtimestamp(session.expires, UTC).isoformat(),
    }


def _cookie_value(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _same_origin(headers: dict[str, str]) -> None:
    """Refuse a request a browser says came from another origin."""
    origin = headers.get("origin")
    if origin is None:
        return
    host = headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        raise PermissionDenied("cross-origin request refused")


def _only(method: str, allowed: str, path: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise MethodNotAllowed(f"{method} {path}: only {allowed} is allowed")
