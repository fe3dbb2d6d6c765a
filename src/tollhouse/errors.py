"""The one error hierarchy of the gateway.

Every refusal or failure a client can see is a `TollhouseError`. Each class knows its HTTP
status and its error type in both wire formats, so no stage ever builds an error body by hand
and the official SDKs raise their own exception class for it (they map on the status).
"""

from __future__ import annotations

from typing import ClassVar

import orjson

from tollhouse.types import WireFormat


class TollhouseError(Exception):
    status: ClassVar[int] = 500
    anthropic_type: ClassVar[str] = "api_error"
    openai_type: ClassVar[str] = "api_error"
    # Anthropic's `error.details.error_code`, which its SDK maps to a finer exception class.
    anthropic_error_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def status_for(self, fmt: WireFormat) -> int:
        """The HTTP status in `fmt`; the same in both formats unless a format has its own."""
        return self.status

    def type_for(self, fmt: WireFormat) -> str:
        """The error's type as a client of `fmt` sees it."""
        return self.anthropic_type if fmt == "anthropic" else self.openai_type

    def body(self, fmt: WireFormat, request_id: str | None = None) -> bytes:
        return render_error_body(
            fmt,
            self.message,
            anthropic_type=self.anthropic_type,
            openai_type=self.openai_type,
            param=self.param,
            code=self.code,
            request_id=request_id,
            anthropic_error_code=self.anthropic_error_code,
        )


class BadRequest(TollhouseError):
    status = 400
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class AuthError(TollhouseError):
    status = 401
    anthropic_type = "authentication_error"
    openai_type = "authentication_error"


class PermissionDenied(TollhouseError):
    status = 403
    anthropic_type = "permission_error"
    openai_type = "permission_error"


class NotFound(TollhouseError):
    status = 404
    anthropic_type = "not_found_error"
    openai_type = "not_found_error"


class ThreadNotFound(NotFound):
    """A thread continuation (`thread.previous_message_id`) names no conversation this key's
    gateway holds: unknown, expired, dropped, or another key's. The Anthropic SDKs raise
    `ThreadNotFoundError` and send the whole conversation again under a new thread."""

    anthropic_error_code: ClassVar[str | None] = "thread_not_found"


class ThreadUnsupported(BadRequest):
    """A threaded request the gateway cannot hold (`conversations.backend: off`). The SDKs'
    tool runners then continue without a thread, sending the whole conversation."""

    anthropic_error_code: ClassVar[str | None] = "thread_unsupported_request"


class ThreadFingerprintMismatch(BadRequest):
    """A continuation repeats `system` or `tools` with other values than the thread was
    created with (the server keeps those of the `create`)."""

    anthropic_error_code: ClassVar[str | None] = "thread_fingerprint_mismatch"


class PreviousResponseNotFound(NotFound):
    """`previous_response_id` names no response this key's gateway holds (unknown, expired,
    not stored, or another key's): 404 as OpenAI answers it, code `previous_response_not_found`."""

    openai_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="previous_response_id", code="previous_response_not_found")


class GuardrailBlocked(BadRequest):
    """An input guardrail refused the call (stages/shape/guardrails/): 400, code
    `guardrail_blocked`, naming the guardrail and its rule, never quoting the text."""

    def __init__(self, guardrail: str, kind: str, rule: str) -> None:
        super().__init__(
            f"request refused by input guardrail {guardrail!r} ({kind}: {rule})",
            code="guardrail_blocked",
        )


class MethodNotAllowed(TollhouseError):
    status = 405
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class RequestTimeout(TollhouseError):
    """The client did not send its whole request in time."""

    status = 408
    anthropic_type = "timeout_error"
    openai_type = "timeout"


class RequestTooLarge(TollhouseError):
    status = 413
    anthropic_type = "request_too_large"
    openai_type = "invalid_request_error"


class HeadersTooLarge(TollhouseError):
    status = 431
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class UnsupportedMediaType(TollhouseError):
    status = 415
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class RateLimited(TollhouseError):
    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "rate_limit_error"


class BudgetExceeded(TollhouseError):
    """A spend cap is reached. 429 like the providers' own spend limits, marked so the
    official SDKs don't retry: waiting seconds can't help before the period turns.
    Anthropic's SDK raises `EnforcedSpendLimitReachedError` on it (its `error_code`);
    OpenAI's SDK a `RateLimitError` with code `insufficient_quota`, as OpenAI sends."""

    status = 429
    anthropic_type = "rate_limit_error"
    openai_type = "insufficient_quota"
    anthropic_error_code: ClassVar[str | None] = "enforced_spend_limit_reached"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            message,
            code="insufficient_quota",
            headers={"x-should-retry": "false", **(headers or {})},
        )


class ServiceUnavailable(TollhouseError):
    """A part the gateway needs to decide on a call (key store, shared counters) is down."""

    status = 503
    anthropic_type = "api_error"
    openai_type = "server_error"


class GuardrailUnavailable(ServiceUnavailable):
    """An input guardrail with `on_error: closed` could not check the call: 503, code
    `guardrail_unavailable` (a retry may find its endpoint back)."""

    def __init__(self, guardrail: str, kind: str, why: str) -> None:
        super().__init__(
            f"input guardrail {guardrail!r} ({kind}) could not check the request: {why}; "
            "this route refuses unchecked requests (on_error: closed)",
            code="guardrail_unavailable",
        )


class UpstreamError(TollhouseError):
    """The upstream could not be reached or answered with something unusable."""

    status = 502
    anthropic_type = "api_error"
    openai_type = "api_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    anthropic_type = "timeout_error"
    openai_type = "timeout"


class Overloaded(TollhouseError):
    """Nothing can take the call now: 529 `overloaded_error` as Anthropic sends it, and 503
    for OpenAI clients, whose API has no 529."""

    status = 529
    anthropic_type = "overloaded_error"
    openai_type = "server_error"

    def status_for(self, fmt: WireFormat) -> int:
        return 529 if fmt == "anthropic" else 503


class InternalError(TollhouseError):
    status = 500
    anthropic_type = "api_error"
    openai_type = "server_error"


# Status -> error type, used when relaying or translating an upstream error whose body we
# cannot read, and by the simulator when it injects faults.
ANTHROPIC_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

OPENAI_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout",
    529: "server_error",
}


def error_type_for_status(fmt: WireFormat, status: int) -> str:
    table = ANTHROPIC_TYPE_BY_STATUS if fmt == "anthropic" else OPENAI_TYPE_BY_STATUS
    if status in table:
        return table[status]
    if status >= 500:
        return "api_error" if fmt == "anthropic" else "server_error"
    return "invalid_request_error"


def render_error_body(
    fmt: WireFormat,
    message: str,
    *,
    anthropic_type: str | None = None,
    openai_type: str | None = None,
    status: int | None = None,
    param: str | None = None,
    code: str | None = None,
    request_id: str | None = None,
    anthropic_error_code: str | None = None,
) -> bytes:
    """The error body exactly as the provider of `fmt` shapes it."""
    if fmt == "anthropic":
        etype = anthropic_type or error_type_for_status(fmt, status or 500)
        error: dict[str, object] = {"type": etype, "message": message}
        if anthropic_error_code:
            error["details"] = {"error_code": anthropic_error_code}
        doc: dict[str, object] = {"type": "error", "error": error}
        if request_id:
            doc["request_id"] = request_id
        return orjson.dumps(doc)
    etype = openai_type or error_type_for_status(fmt, status or 500)
    return orjson.dumps(
        {"error": {"message": message, "type": etype, "param": param, "code": code}}
    )
