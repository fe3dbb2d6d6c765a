"""One call through the official SDK of a wire format, as an app makes it, read back as an
`Answer` (its text, tool calls, stop reason, the gateway's request id, the wall time).

The SDKs are the `eval` extra; `require_sdks` says how to install them when one is
missing. A call the gateway answered with an error is an `Answer` with `error` set (the
case fails); a gateway that can't be reached, or refuses the key, raises
`GatewayUnreachable` (the run can't go on, exit code 2).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from tollhouse.evals.suite import Api

if TYPE_CHECKING:
    import anthropic
    import openai

REQUEST_ID_HEADER = "x-tollhouse-request-id"
VARIANT_HEADER = "x-tollhouse-variant"
"""Asks for a route's variant by name (#14); answers name the variant they were served by."""
CONFIG_VERSION_HEADER = "x-tollhouse-config-version"
"""Names the config version that served an answer (#14)."""
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
_REFUSED_KEY = (401, 403)


class MissingExtra(RuntimeError):
    """A package of the `eval` extra is not installed."""


class GatewayUnreachable(RuntimeError):
    """The gateway can't be reached or refuses the client's key."""


def require_sdks() -> None:
    """Raise `MissingExtra` naming what to install unless the SDKs and jsonschema import."""
    missing = []
    for module in ("anthropic", "openai", "jsonschema", "httpx"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtra(
            f"the eval runner needs {', '.join(missing)}: pip install 'tollhouse[eval]'"
        )


@dataclass(frozen=True, slots=True)
class ToolUse:
    name: str
    input: Any
    """The parsed input; None when it is not JSON (a cut tool call)."""


@dataclass(slots=True)
class Answer:
    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    stop_reason: str | None = None
    request_id: str | None = None
    latency_ms: float = 0.0
    variant: str | None = None
    config_version: str | None = None
    status: int = 200
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    messages: tuple[dict[str, Any], ...]
    system: Any = None
    tools: tuple[dict[str, Any], ...] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class GatewayClients:
    """The two SDK clients of one gateway (`base_url`, the gateway key `api_key`), made on
    first use. `timeout` bounds each call; the SDKs' own retries are off, so a case's
    latency is one call's."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 120.0) -> None:
        require_sdks()
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._anthropic: anthropic.AsyncAnthropic | None = None
        self._openai: openai.AsyncOpenAI | None = None

    async def send(self, api: Api, request: Request) -> Answer:
        started = time.perf_counter()
        if api == "anthropic":
            answer = await self._send_anthropic(request)
        else:
            answer = await self._send_openai(request)
        answer.latency_ms = (time.perf_counter() - started) * 1000
        return answer

    async def _send_anthropic(self, request: Request) -> Answer:
        import anthropic

        if self._anthropic is None:
            self._anthropic = anthropic.AsyncAnthropic(
                base_url=self.base_url, api_key=self.api_key, max_retries=0, timeout=self.timeout
            )
        parameters = dict(request.parameters)
        max_tokens = int(parameters.pop("max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS))
        options: dict[str, Any] = {}
        if request.system is not None:
            options["system"] = request.system
        if request.tools is not None:
            options["tools"] = list(request.tools)
        try:
            raw = await self._anthropic.messages.with_raw_response.create(
                model=request.model,
                max_tokens=max_tokens,
                messages=cast(Any, list(request.messages)),
                extra_body=parameters or None,
                extra_headers=request.headers or None,
                **options,
            )
        except anthropic.APIStatusError as error:
            return _error_answer(error.status_code, error.response.headers, error.message)
        except anthropic.APIConnectionError as error:
            raise GatewayUnreachable(f"{self.base_url}: {error}") from None
        message = await raw.parse()
        answer = _headers_answer(raw.headers)
        for block in message.content:
            if block.type == "text":
                answer.text += block.text
            elif block.type == "tool_use":
                answer.tool_calls.append(ToolUse(block.name, block.input))
        answer.stop_reason = message.stop_reason
        return answer

    async def _send_openai(self, request: Request) -> Answer:
        import openai

        if self._openai is None:
            self._openai = openai.AsyncOpenAI(
                base_url=self.base_url + "/v1",
                api_key=self.api_key,
                max_retries=0,
                timeout=self.timeout,
            )
        messages = list(request.messages)
        if request.system is not None:
            messages.insert(0, {"role": "system", "content": request.system})
        options: dict[str, Any] = {}
        if request.tools is not None:
            options["tools"] = list(request.tools)
        try:
            raw = await self._openai.chat.completions.with_raw_response.create(
                model=request.model,
                messages=cast(Any, messages),
                extra_body=dict(request.parameters) or None,
                extra_headers=request.headers or None,
                **options,
            )
        except openai.APIStatusError as error:
            return _error_answer(error.status_code, error.response.headers, error.message)
        except openai.APIConnectionError as error:
            raise GatewayUnreachable(f"{self.base_url}/v1: {error}") from None
        completion = raw.parse()
        answer = _headers_answer(raw.headers)
        if completion.choices:
            choice = completion.choices[0]
            answer.text = choice.message.content or ""
            for call in choice.message.tool_calls or ():
                function = getattr(call, "function", None)
                if function is not None:
                    answer.tool_calls.append(ToolUse(function.name, _json(function.arguments)))
            answer.stop_reason = choice.finish_reason
        return answer

    async def aclose(self) -> None:
        for client in (self._anthropic, self._openai):
            if client is not None:
                await client.close()


def _headers_answer(headers: Any) -> Answer:
    return Answer(
        request_id=headers.get(REQUEST_ID_HEADER),
        variant=headers.get(VARIANT_HEADER),
        config_version=headers.get(CONFIG_VERSION_HEADER),
    )


def _error_answer(status: int, headers: Any, message: str) -> Answer:
    if status in _REFUSED_KEY:
        raise GatewayUnreachable(f"the gateway refused the key ({status}): {message}")
    answer = _headers_answer(headers)
    answer.status = status
    answer.error = f"{status}: {message}"
    return answer


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
