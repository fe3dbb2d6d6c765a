"""Structured output, validated: a route (`structured_output` in its config) or a request
(the `x-tollhouse-schema` header naming one of the config's `schemas`) requires a text
answer to be JSON matching a JSON Schema, and/or each tool call's input to match the schema
of the tool the request offered.

An answer that does not parse or validate, or was cut at its length limit, gets one more
attempt with what was wrong fed back: the answer as the assistant's turn, a tool result per
tool call, and the feedback as the user's turn (`Format.with_correction`), so the model sees
its own mistake. Still invalid (or `retry: false`), it is refused with 422 in the client's
format naming what was wrong (`on_invalid: refuse`), or passed on and recorded (`flag`).
The call's `structured_output` says how it went — `valid`, `retried` (invalid, then valid
after the retry) or `invalid` — on the reply (`x-tollhouse-structured-output`) and in the
ledger. Streams: stages/check/structured_stream.py.

JSON must be the whole text (whitespace aside), as an app's `json.loads` reads it; a fenced
code block is not JSON. An answer made of tool calls is not held to the text schema (the
JSON answer comes after the tools ran), only its tool inputs, when asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.call import Call
from tollhouse.config.model import StructuredOutputPolicy
from tollhouse.errors import BadRequest, TollhouseError
from tollhouse.stages.check.json_schemas import (
    MAX_ERROR_CHARS,
    CompiledSchema,
    SchemaCache,
    SchemaError,
)
from tollhouse.stages.check.stream_buffer import restore_stream
from tollhouse.stages.check.truncation import TRUNCATED
from tollhouse.wire.answer_content import AnswerContent

SCHEMA_HEADER = "x-tollhouse-schema"
# The endpoints whose answers are read; count_tokens and embeddings have none to check.
CHECKED_ENDPOINTS = frozenset({"messages", "chat_completions"})
# The opening of every corrective turn (a test's scripted simulator answers on it).
FEEDBACK_OPENING = "Your previous answer was invalid"
# A schema is repeated in the feedback up to this size (the model may never have seen the
# route's schema: the app's prompt may only describe it).
_SCHEMA_IN_FEEDBACK = 8 * 1024


@dataclass(frozen=True, slots=True)
class OutputRequirement:
    """What a call's answer must be: JSON matching `schema` (named `schema_name`; None: the
    schema the request asks for, if any and `policy.request_schema`), tool inputs matching
    their tools' schemas (`policy.tool_inputs`); the schemas requests bring are compiled
    through `request_schemas`, under `policy`."""

    policy: StructuredOutputPolicy
    schema: CompiledSchema | None
    schema_name: str | None
    schema_doc: Any
    request_schemas: SchemaCache

    @property
    def buffers_streams(self) -> bool:
        return self.policy.stream == "buffer"


class InvalidStructuredOutput(TollhouseError):
    """The route requires structured output and the answer is not (after its retry)."""

    status = 422
    anthropic_type = "invalid_request_error"
    openai_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_structured_output", headers=_NO_RETRY)


_NO_RETRY = {"x-should-retry": "false"}


@dataclass(frozen=True, slots=True)
class Problems:
    """What is wrong with an answer: of its text (`text`), of its tool calls by id
    (`tools`), and whether it was cut at its length limit (`cut`)."""

    text: tuple[str, ...] = ()
    tools: Mapping[str, str] | None = None
    cut: bool = False

    def summary(self) -> str:
        parts = list(self.text)
        parts.extend((self.tools or {}).values())
        return "; ".join(parts)[: 4 * MAX_ERROR_CHARS]


def requirement_for(
    call: Call, route: OutputRequirement | None, named: Mapping[str, OutputRequirement]
) -> OutputRequirement | None:
    """The requirement `call` is served under: the schema its `x-tollhouse-schema` header
    names (among `named`, with the route's policy when it has one), else its route's.
    `BadRequest` for a name the config does not define, or an endpoint whose answers can't
    be checked (the Responses API)."""
    name = call.headers.get(SCHEMA_HEADER)
    requirement = route
    if name is not None:
        chosen = named.get(name)
        if chosen is None:
            raise BadRequest(
                f"{SCHEMA_HEADER}: no schema named {name[:100]!r} is defined on this gateway",
                param=SCHEMA_HEADER,
            )
        requirement = chosen if route is None else _with_policy(chosen, route.policy)
    if requirement is None or call.endpoint not in CHECKED_ENDPOINTS:
        if requirement is not None and call.endpoint == "responses":
            raise BadRequest(
                "this route requires validated structured output, which the gateway checks "
                "on /v1/messages and /v1/chat/completions only; call one of those"
            )
        return None
    return requirement


def _with_policy(chosen: OutputRequirement, policy: StructuredOutputPolicy) -> OutputRequirement:
    return OutputRequirement(
        policy=policy,
        schema=chosen.schema,
        schema_name=chosen.schema_name,
        schema_doc=chosen.schema_doc,
        request_schemas=chosen.request_schemas,
    )


def find_problems(
    requirement: OutputRequirement,
    content: AnswerContent,
    stop_reason: str | None,
    offered: Mapping[str, Any],
    schema: CompiledSchema | None,
) -> Problems | None:
    """What is wrong with an answer (`content`, stopped for `stop_reason` in Anthropic's
    words, to a request that offered tools with the schemas `offered`, its text required to
    be JSON matching `schema` when there is one); None when nothing."""
    text: list[str] = []
    if stop_reason in TRUNCATED:
        text.append(
            f"the answer was cut at its length limit (stop reason {stop_reason}) before it "
            "was complete"
        )
    tools: dict[str, str] = {}
    if requirement.policy.tool_inputs:
        for call in content.tool_calls:
            errors = _tool_input_errors(requirement, call.name, call.arguments, offered)
            if errors:
                tools[call.id] = f"input of tool {call.name!r}: " + "; ".join(errors)
    if schema is not None and not content.tool_calls and not text:
        text.extend(_json_errors(schema, content.text))
    if not text and not tools:
        return None
    return Problems(tuple(text), tools or None, cut=stop_reason in TRUNCATED)


def _json_errors(schema: CompiledSchema, text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        shown = text.strip()[:60]
        return [f"the answer is not JSON ({exc}); it starts {shown!r}"]
    return [f"the JSON does not match the schema: {e}" for e in schema.errors(value)]


def _tool_input_errors(
    requirement: OutputRequirement, name: str, arguments: str, offered: Mapping[str, Any]
) -> list[str]:
    if name not in offered:
        return [f"no tool named {name[:100]!r} was offered"]
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError as exc:
        return [f"not JSON ({exc})"]
    try:
        schema = requirement.request_schemas.get(offered[name])
    except SchemaError as exc:
        return [f"the tool's input schema can't be checked against ({exc})"]
    return schema.errors(value)


def text_schema(call: Call, requirement: OutputRequirement) -> tuple[CompiledSchema | None, Any]:
    """The schema `call`'s text answer must match, compiled, and as written: the
    requirement's own, else the one the request asks for (`policy.request_schema`)."""
    if requirement.schema is not None or not requirement.policy.request_schema:
        return requirement.schema, requirement.schema_doc
    asked = call.wire.requested_schema(call.body)
    if asked is None:
        return None, None
    try:
        return requirement.request_schemas.get(asked), asked
    except SchemaError:
        # The upstream was given this schema too and judges it; the gateway can't check it.
        return None, None


def judge_answer(
    call: Call, requirement: OutputRequirement, doc: dict[str, Any], stop_reason: str | None
) -> Problems | None:
    """What is wrong with answer `doc` (client's format, stopped for `stop_reason`), noted
    on the call (`structured_output`, `structured_output_errors`); None when nothing."""
    content = call.wire.answer_content(doc)
    if content is None:
        return None
    offered = call.wire.tool_schemas(call.body)
    schema, _ = text_schema(call, requirement)
    problems = find_problems(requirement, content, stop_reason, offered, schema)
    if problems is None:
        call.structured_output = "retried" if call.structured_output_retried else "valid"
        call.structured_output_errors = None
        return None
    call.structured_output = "invalid"
    call.structured_output_errors = problems.summary()
    return problems


def check_structured_output(
    call: Call, requirement: OutputRequirement, doc: dict[str, Any], checked_again: bool
) -> bool:
    """The answer check for a whole answer `doc` in the client's format: False to pass it
    (valid, or flagged), True after turning the request into its corrective retry; raises
    `InvalidStructuredOutput` to refuse it."""
    problems = judge_answer(call, requirement, doc, call.stop_reason)
    if problems is None:
        return False
    if requirement.policy.retry and not checked_again:
        _, shown = text_schema(call, requirement)
        body = call.wire.with_correction(
            call.body, doc, feedback(problems, shown), problems.tools or {}
        )
        call.body = body
        call.raw_body = orjson.dumps(body)
        call.structured_output_retried = True
        return True
    if requirement.policy.on_invalid == "refuse":
        restore_stream(call)  # recorded as the stream it was asked as, refused before it began
        raise InvalidStructuredOutput(refusal(call, problems))
    return False


def feedback(problems: Problems, schema_doc: Any) -> str:
    """The corrective user turn: what was wrong, and what is expected instead (`schema_doc`:
    the schema the text must match, None when none)."""
    lines = [f"{FEEDBACK_OPENING}: {problems.summary()}."]
    if problems.tools:
        lines.append("Call the tools again with input that matches each tool's input schema.")
    elif schema_doc is not None:
        lines.append(
            "Answer again with only a JSON value matching the required JSON Schema, "
            "with no other text before or after it."
        )
        shown = orjson.dumps(schema_doc)
        if len(shown) <= _SCHEMA_IN_FEEDBACK:
            lines.append(f"The schema: {shown.decode()}")
    if problems.cut:
        lines.append("Keep the answer shorter, so that it fits.")
    return "\n".join(lines)


def refusal(call: Call, problems: Problems) -> str:
    """What a refusal tells the client: what was wrong, after the retry when there was one."""
    tried = " after a corrective retry" if call.structured_output_retried else ""
    return f"the answer does not match the required structured output{tried}: {problems.summary()}"
