"""The text of a request, as guardrails and untrusted-content marking see it: a list of
`Segment`s, each one string of the request (a message's content, a text block, a tool
result, a text document, the system prompt) with where it sits and who wrote it, in the
three client formats (Anthropic Messages, Chat Completions, Responses).

`RequestText` reads the client's body as it is and edits a copy: the first edit copies
the body (the parsed document may be shared with what holds the conversation), and
`commit` puts the edited body on the call. A request nobody edits is never copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from tollhouse.call import Call
from tollhouse.config.input_guardrails import Scope
from tollhouse.types import WireFormat

Source = Literal["message", "tool_result", "document", "system"]
_SYSTEM_ROLES = ("system", "developer")
_TEXT_PARTS = ("text", "input_text", "output_text")


@dataclass(slots=True)
class Segment:
    """One string of a request: `holder[key]` (an object's field, or an item of a list
    such as an embeddings request's `input`). `message` is its position in `messages`
    (`input` for Responses and embeddings), -1 for the system prompt."""

    index: int  # its position among the request's segments
    message: int
    role: str
    source: Source
    holder: Any  # dict[str, Any] | list[Any]
    key: str | int

    @property
    def text(self) -> str:
        return str(self.holder[self.key])

    def replace(self, text: str) -> None:
        self.holder[self.key] = text


class RequestText:
    def __init__(self, body: dict[str, Any], fmt: WireFormat) -> None:
        self.body = body
        self.fmt = fmt
        self.edited = False
        self.segments = list(_segments(body, fmt))

    def in_scope(self, scope: Scope) -> list[Segment]:
        """The segments a guardrail of `scope` checks."""
        if scope == "all":
            return self.segments
        user = [s for s in self.segments if s.source != "system" and s.role in ("user", "tool")]
        if scope == "user":
            return user
        said = [s for s in user if s.role == "user" and s.source != "tool_result"]
        last = said[-1].message if said else -2
        return [s for s in said if s.message == last]

    def editable(self) -> list[Segment]:
        """The segments of a copy of the body, to edit; the same segments in the same
        order as `segments`."""
        if not self.edited:
            self.body = orjson.loads(orjson.dumps(self.body))
            self.segments = list(_segments(self.body, self.fmt))
            self.edited = True
        return self.segments

    def commit(self, call: Call) -> None:
        """Put the edited body on `call` (nothing when nothing was edited)."""
        if self.edited:
            call.body = self.body
            call.raw_body = orjson.dumps(self.body)
            call.input_estimate = None


def _segments(body: dict[str, Any], fmt: WireFormat) -> Iterator[Segment]:
    walk = _anthropic if fmt == "anthropic" else _responses if fmt == "responses" else _chat
    for index, (message, role, source, holder, key) in enumerate(walk(body)):
        yield Segment(index, message, role, source, holder, key)


_Found = tuple[int, str, Source, Any, str | int]


def _anthropic(body: dict[str, Any]) -> Iterator[_Found]:
    system = body.get("system")
    if isinstance(system, str):
        yield -1, "system", "system", body, "system"
    elif isinstance(system, list):
        for block in system:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                yield -1, "system", "system", block, "text"
    for i, message in enumerate(_list(body.get("messages"))):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            yield i, role, "message", message, "content"
            continue
        for block in _list(content):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                yield i, role, "message", block, "text"
            elif kind == "tool_result":
                inner = block.get("content")
                if isinstance(inner, str):
                    yield i, role, "tool_result", block, "content"
                for part in _list(inner):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield i, role, "tool_result", part, "text"
            elif kind == "document":
                source = block.get("source")
                if not isinstance(source, dict):
                    continue
                if source.get("type") == "text" and isinstance(source.get("data"), str):
                    yield i, role, "document", source, "data"
                for part in _list(source.get("content")):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield i, role, "document", part, "text"


def _chat(body: dict[str, Any]) -> Iterator[_Found]:
    if "messages" not in body:  # an embeddings request: its `input` is the user's text
        inputs = body.get("input")
        if isinstance(inputs, str):
            yield 0, "user", "message", body, "input"
        elif isinstance(inputs, list):
            for i, item in enumerate(inputs):
                if isinstance(item, str):
                    yield i, "user", "message", inputs, i
        return
    for i, message in enumerate(_list(body.get("messages"))):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", ""))
        source: Source = (
            "system" if role in _SYSTEM_ROLES else "tool_result" if role == "tool" else "message"
        )
        yield from _content(i, role, source, message, "content")


def _responses(body: dict[str, Any]) -> Iterator[_Found]:
    if isinstance(body.get("instructions"), str):
        yield -1, "system", "system", body, "instructions"
    items = body.get("input")
    if isinstance(items, str):
        yield 0, "user", "message", body, "input"
        return
    for i, item in enumerate(_list(items)):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            if isinstance(item.get("output"), str):
                yield i, "tool", "tool_result", item, "output"
            continue
        role = item.get("role")
        if not isinstance(role, str):
            continue
        source: Source = "system" if role in _SYSTEM_ROLES else "message"
        yield from _content(i, role, source, item, "content")


def _content(
    i: int, role: str, source: Source, holder: dict[str, Any], key: str
) -> Iterator[_Found]:
    """A Chat Completions or Responses content: a string, or a list of parts."""
    content = holder.get(key)
    if isinstance(content, str):
        yield i, role, source, holder, key
        return
    for part in _list(content):
        if (
            isinstance(part, dict)
            and part.get("type") in _TEXT_PARTS
            and isinstance(part.get("text"), str)
        ):
            yield i, role, source, part, "text"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
