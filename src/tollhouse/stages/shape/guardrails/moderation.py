"""A provider's moderation endpoint: OpenAI's `POST /moderations` (`{model, input: [...]}`
→ `{results: [{flagged, categories: {name: bool}, category_scores}]}`), sent through the
provider adapter the config names, with its key, like any upstream call.

One request per call, with every checked text as one input, answered before the call is
dispatched: a stream pays this one round trip before its first byte, nothing per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson

from tollhouse.config.input_guardrails import Action, OnError, Scope
from tollhouse.providers.base import (
    Provider,
    UpstreamConnectionError,
    UpstreamRequest,
    UpstreamTimeoutError,
)
from tollhouse.stages.shape.guardrails.base import Finding, Guardrail, GuardrailError
from tollhouse.stages.shape.guardrails.request_text import Segment

MODERATIONS_PATH = "/moderations"  # relative to an OpenAI base URL, which ends in /v1


class ModerationGuardrail(Guardrail):
    kind = "moderation"

    def __init__(
        self,
        name: str,
        provider: Provider,
        *,
        model: str,
        categories: Sequence[str],
        timeout: float,
        action: Action,
        on_error: OnError,
        scope: Scope,
    ) -> None:
        super().__init__(name, action, on_error, scope)
        self.provider = provider
        self.model = model
        self.categories = frozenset(categories)
        self.timeout = timeout

    async def inspect(self, segments: list[Segment]) -> Finding | None:
        inputs = [segment.text for segment in segments if segment.text.strip()]
        if not inputs:
            return None
        flagged = _flagged(await self._ask(inputs))
        if self.categories:
            flagged &= self.categories
        if not flagged:
            return None
        return Finding("flagged for " + ", ".join(sorted(flagged)))

    async def _ask(self, inputs: list[str]) -> object:
        request = UpstreamRequest(
            MODERATIONS_PATH,
            orjson.dumps({"model": self.model, "input": inputs}),
            stream=False,
            timeout=self.timeout,
            read_idle_timeout=self.timeout,
        )
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.provider.send(request)
                try:
                    body = await response.read()
                finally:
                    await response.aclose()
        except (TimeoutError, UpstreamTimeoutError):
            raise GuardrailError(f"no answer within {self.timeout:g} s") from None
        except UpstreamConnectionError:
            raise GuardrailError(f"{self.provider.name} unreachable") from None
        if response.status != 200:
            raise GuardrailError(f"{self.provider.name} answered {response.status}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise GuardrailError("an answer that is not JSON") from None


def _flagged(doc: object) -> set[str]:
    """The categories flagged in any result of a moderation answer; `GuardrailError` when
    it is not one."""
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list) or not results:
        raise GuardrailError("an answer without results")
    flagged: set[str] = set()
    for result in results:
        categories = result.get("categories") if isinstance(result, dict) else None
        if not isinstance(categories, dict):
            raise GuardrailError("a result without categories")
        flagged.update(name for name, value in categories.items() if value is True)
        if result.get("flagged") is True and not flagged:
            flagged.add("unspecified")
    return flagged
