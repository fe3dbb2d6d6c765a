"""The requests of a batch, read from what the client sent and checked before anything
reaches a provider: an Anthropic create body (`requests: [{custom_id, params}]`) or an
OpenAI batch input file (JSONL, one `{custom_id, method, url, body}` per line).

Every refusal is a `BadRequest` naming the request (its index, or the file's line number)
and the field: a malformed line, a missing or repeated `custom_id`, more requests than
`batches.max_requests`, a request its live endpoint would refuse (checked by the same
parser, `wire/anthropic.py` / `wire/openai.py`), a stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.errors import BadRequest
from tollhouse.wire import anthropic as anthropic_wire
from tollhouse.wire import openai as openai_wire

# Anthropic's rule for a custom_id; OpenAI takes any string, held to the same length here.
_ANTHROPIC_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_CUSTOM_ID = 512
CHAT_COMPLETIONS = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch: the client's `custom_id` and its body (a Messages or Chat
    Completions request naming a model this gateway serves)."""

    custom_id: str
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


def anthropic_lines(doc: dict[str, Any], max_requests: int) -> list[BatchLine]:
    """The requests of a `POST /v1/messages/batches` body."""
    requests = doc.get("requests")
    if not isinstance(requests, list) or not requests:
        raise BadRequest("requests: expected a non-empty array of requests", param="requests")
    _check_count(len(requests), max_requests, "requests")
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        where = f"requests[{i}]"
        if not isinstance(request, dict):
            raise BadRequest(f"{where}: expected an object with custom_id and params", param=where)
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not _ANTHROPIC_CUSTOM_ID.match(custom_id):
            raise BadRequest(
                f"{where}.custom_id: expected 1 to 64 letters, digits, '-' or '_'",
                param=f"{where}.custom_id",
            )
        _check_unique(custom_id, seen, f"{where}.custom_id")
        params = request.get("params")
        if not isinstance(params, dict):
            raise BadRequest(f"{where}.params: expected an object", param=f"{where}.params")
        body = _checked(params, anthropic_wire.parse_messages_request, f"{where}.params")
        lines.append(BatchLine(custom_id, body))
    return lines


def openai_lines(data: bytes, max_requests: int) -> list[BatchLine]:
    """The requests of an OpenAI batch input file (purpose `batch`): JSONL, every line a
    `POST` to `/v1/chat/completions` (the one batch endpoint this gateway relays), all of
    one model, as OpenAI requires of a batch file."""
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"file {where}: not valid JSON ({error})", param="file") from None
        if not isinstance(line, dict):
            raise BadRequest(f"file {where}: expected a JSON object", param="file")
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not 0 < len(custom_id) <= _MAX_CUSTOM_ID:
            raise BadRequest(
                f"file {where}: custom_id: expected a string of 1 to {_MAX_CUSTOM_ID} characters",
                param="file",
            )
        _check_unique(custom_id, seen, f"file {where}: custom_id")
        if line.get("method") != "POST" or line.get("url") != CHAT_COMPLETIONS:
            raise BadRequest(
                f"file {where}: expected method POST and url {CHAT_COMPLETIONS} (the batch "
                "endpoint this gateway relays)",
                param="file",
            )
        body = line.get("body")
        if not isinstance(body, dict):
            raise BadRequest(f"file {where}: body: expected an object", param="file")
        body = _checked(body, openai_wire.parse_chat_request, f"file {where}: body")
        if lines and body.get("model") != lines[0].model:
            raise BadRequest(
                f"file {where}: model {body.get('model')!r} differs from line 1's "
                f"{lines[0].model!r}; a batch file holds requests for one model",
                param="file",
            )
        lines.append(BatchLine(custom_id, body))
        _check_count(len(lines), max_requests, "file")
    if not lines:
        raise BadRequest("file: the batch input file holds no request", param="file")
    return lines


def _checked(
    body: dict[str, Any], parse: Callable[[bytes], dict[str, Any]], where: str
) -> dict[str, Any]:
    """`body` checked as its live endpoint checks a request, refused naming `where`."""
    if body.get("stream") is True:
        raise BadRequest(f"{where}.stream: a batch request can't be streamed", param=where)
    try:
        return parse(orjson.dumps(body))
    except BadRequest as error:
        raise BadRequest(f"{where}: {error.message}", param=where) from None


def _check_unique(custom_id: str, seen: set[str], where: str) -> None:
    if custom_id in seen:
        raise BadRequest(f"{where}: {custom_id!r} is used twice; each must be unique", param=where)
    seen.add(custom_id)


def _check_count(count: int, most: int, param: str) -> None:
    if count > most:
        raise BadRequest(
            f"{param}: a batch holds at most {most} requests on this gateway "
            "(batches.max_requests); split it",
            param=param,
        )
