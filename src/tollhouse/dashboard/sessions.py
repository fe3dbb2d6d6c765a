"""Dashboard sessions: a token exchanged once for a session cookie, and the CSRF token that
goes with it.

A session is a signed value, `<id>.<role>.<expires>.<mac>`, so that every worker process of
a gateway (`serve --workers N`) accepts the sessions any of them opened without a shared
store: the signing key is derived from the tokens one signs in with, so changing either
token ends every session. Signing out ends a session at once in the process that answered
it (the others within `session_seconds` at most); the table of ended sessions is bounded
(`max_sessions`, the oldest forgotten first) and each entry leaves it when its session
would have expired anyway.

The CSRF token of a session is derived from it (HMAC of its id), so it needs no storage
either; the page reads it from `GET /dashboard/session` (same origin only: the cookie is
SameSite=Strict and nothing answers cross-origin requests) and sends it as
`x-csrf-token` with every action.

Failed sign-ins are limited per process (`MAX_FAILURES` a minute), so the tokens can't be
guessed at the speed of the network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "read"]

COOKIE = "tollhouse_dashboard"
MAX_FAILURES = 20  # failed sign-ins a minute, per process
_FAILURE_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    role: Role
    expires: float  # epoch seconds
    csrf: str


class SignInRefused(Exception):
    """The token is not one of the dashboard's. `throttled`: too many failures lately."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


class Sessions:
    """Opens, checks and ends sessions for the tokens `admin_token` (role `admin`) and
    `read_only_token` (role `read`); None disables that way in."""

    def __init__(
        self,
        admin_token: str | None,
        read_only_token: str | None,
        *,
        lifetime: float,
        max_ended: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        ways_in: list[tuple[str | None, Role]] = [(admin_token, "admin"), (read_only_token, "read")]
        self._tokens = [
            (token.encode("utf-8", "surrogatepass"), role) for token, role in ways_in if token
        ]
        material = b"\0".join(token for token, _ in self._tokens)
        self._key = hmac.new(material, b"tollhouse dashboard session v1", hashlib.sha256).digest()
        self.lifetime = lifetime
        self._max_ended = max_ended
        self._ended: OrderedDict[str, float] = OrderedDict()  # session id -> its expiry
        self._failures: deque[float] = deque(maxlen=MAX_FAILURES)
        self._clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any token can sign in."""
        return bool(self._tokens)

    def sign_in(self, presented: str) -> tuple[Session, str]:
        """A new session for the token `presented`, and its cookie value. Raises
        `SignInRefused` for any other token, and while failures are throttled."""
        now = self._clock()
        if len(self._failures) == MAX_FAILURES and now - self._failures[0] < _FAILURE_WINDOW:
            raise SignInRefused("too many failed sign-ins; wait a minute", throttled=True)
        candidate = presented.strip().encode("utf-8", "surrogatepass")
        role: Role | None = None
        for token, its_role in self._tokens:
            # Every token compared, in constant time: timing tells neither which nor how much.
            if hmac.compare_digest(candidate, token) and role is None:
                role = its_role
        if role is None:
            self._failures.append(now)
            raise SignInRefused("that is not the admin token nor the dashboard's read-only token")
        session_id = secrets.token_urlsafe(18)
        expires = int(now + self.lifetime)
        value = f"{session_id}.{role}.{expires}"
        cookie = f"{value}.{self._mac(value)}"
        return Session(session_id, role, expires, self._csrf(session_id)), cookie

    def check(self, cookie: str | None) -> Session | None:
        """The live session a cookie value stands for, else None (missing, forged,
        expired or ended)."""
        if not cookie:
            return None
        value, _, mac = cookie.rpartition(".")
        if not value or not hmac.compare_digest(mac, self._mac(value)):
            return None
        session_id, role, expires_text = [*value.split("."), "", "", ""][:3]
        if role not in ("admin", "read") or not expires_text.isdigit():
            return None
        expires = int(expires_text)
        if expires <= self._clock() or session_id in self._ended:
            return None
        return Session(session_id, role, expires, self._csrf(session_id))  # type: ignore[arg-type]

    def csrf_valid(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf, presented or "")

    def sign_out(self, session: Session) -> None:
        now = self._clock()
        while self._ended:  # forget the ended sessions that have expired anyway
            oldest_id, expiry = next(iter(self._ended.items()))
            if expiry > now and len(self._ended) < self._max_ended:
                break
            del self._ended[oldest_id]
        self._ended[session.id] = session.expires

    def _mac(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def _csrf(self, session_id: str) -> str:
        return hmac.new(self._key, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()
