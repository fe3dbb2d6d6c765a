"""Batches as the providers run them: Anthropic Message Batches (`/v1/messages/batches`)
and OpenAI Batches with their Files (`/v1/batches`, `/v1/files`).

A batch is answered at once in its first state and processed in the background, one
request after another, each answered by the simulator's own endpoint (so usage, scripts
and prompt caching are those of a live call), `request_ms` apart:

- Anthropic: `in_progress`, then `ended` once every request has a result; a cancel makes
  it `canceling`, and the requests not yet run end `canceled`. Results (`results_url`,
  JSONL) exist once it has ended: `succeeded` with the message, `errored` with the error
  body the live endpoint gave.
- OpenAI: `validating` (each input line must be JSON with `custom_id`, `method` POST, the
  batch's `url` and a `body`; otherwise `failed` with `errors` naming the line),
  `in_progress`, `finalizing`, `completed`, with an output file of the lines answered 200
  and an error file of the others; a cancel makes it `cancelling`, then `cancelled` with
  the lines answered so far.

What the simulator keeps is bounded (`_KEPT`, oldest dropped first): it is a test upstream.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from tollhouse.simulator.response import SimResponse
from tollhouse.types import WireFormat
from tollhouse.wire.multipart import parse_form

# (method, path, headers, body) -> the simulator's answer to one request
Answer = Callable[[str, str, Mapping[str, str], bytes], Awaitable[SimResponse]]
# (format, status, message) -> an error response in that format
ErrorResponse = Callable[[WireFormat, int, str], SimResponse]
JsonResponse = Callable[[WireFormat, Any], SimResponse]

PREFIXES = ("/v1/messages/batches", "/v1/batches", "/v1/files")
_KEPT = 1000  # batches and files kept, each kind
_DAY = 86400
_ANTHROPIC_VERSION = "2023-06-01"


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _AnthropicBatch:
    id: str
    requests: list[dict[str, Any]]
    origin: str  # where the batch was created (`http://host`), for its results_url
    created_at: float = field(default_factory=time.time)
    status: str = "in_progress"
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if self.status == "ended":
            for result in self.results:
                counts[result["result"]["type"]] += 1
        else:
            counts["processing"] = len(self.requests)
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": counts,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.created_at + _DAY),
            "ended_at": _iso(self.ended_at),
            "cancel_initiated_at": _iso(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": (
                f"{self.origin}/v1/messages/batches/{self.id}/results"
                if self.status == "ended"
                else None
            ),
        }


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _OpenAIBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + _DAY,
            **{
                f"{state}_at": self.times.get(state)
                for state in (
                    "in_progress",
                    "finalizing",
                    "completed",
                    "failed",
                    "expired",
                    "cancelling",
                    "cancelled",
                )
            },
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        }


class SimulatedBatches:
    """The batch endpoints of one simulator. `answer` runs one request through the
    simulator's live endpoints; `error` and `json` make its responses."""

    def __init__(
        self, answer: Answer, error: ErrorResponse, json: JsonResponse, request_ms: float
    ) -> None:
        self._answer = answer
        self._error = error
        self._json = json
        self._gap = request_ms / 1000.0
        self._anthropic: OrderedDict[str, _AnthropicBatch] = OrderedDict()
        self._openai: OrderedDict[str, _OpenAIBatch] = OrderedDict()
        self._files: OrderedDict[str, _File] = OrderedDict()
        self._running: set[asyncio.Task[None]] = set()

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(PREFIXES)

    async def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> SimResponse:
        """Answer one request to a batch or file endpoint (`path` without its query)."""
        parts = path.strip("/").split("/")  # v1, messages, batches, id, action...
        content_type = headers.get("content-type", "")
        if parts[:3] == ["v1", "messages", "batches"]:
            host = headers.get("host")
            origin = f"http://{host}" if host else ""  # in process: a relative URL
            return self._anthropic_call(method, parts[3:], query, body, origin)
        if parts[:2] == ["v1", "batches"]:
            return self._openai_batch_call(method, parts[2:], query, body)
        return self._file_call(method, parts[2:], body, content_type)

    # --- Anthropic ------------------------------------------------------------------

    def _anthropic_call(
        self, method: str, rest: list[str], query: str, body: bytes, origin: str
    ) -> SimResponse:
        if not rest:
            if method == "POST":
                return self._anthropic_create(body, origin)
            if method == "GET":
                docs = [batch.doc() for batch in reversed(self._anthropic.values())]
                return self._json("anthropic", _page(docs, query, "anthropic"))
            return self._error("anthropic", 405, f"Method {method} not allowed")
        batch = self._anthropic.get(rest[0])
        if batch is None:
            return self._error("anthropic", 404, f"Message batch {rest[0]!r} not found")
        action = rest[1] if len(rest) > 1 else None
        if action is None and method == "GET":
            return self._json("anthropic", batch.doc())
        if action == "cancel" and method == "POST":
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.cancel_initiated_at = time.time()
            return self._json("anthropic", batch.doc())
        if action == "results" and method == "GET":
            if batch.status != "ended":
                return self._error(
                    "anthropic", 400, f"Message batch {batch.id} has not ended; no results yet"
                )
            lines = b"".join(orjson.dumps(result) + b"\n" for result in batch.results)
            return SimResponse(200, {"content-type": "application/binary"}, lines)
        return self._error("anthropic", 404, f"Not found: {method} {'/'.join(rest)}")

    def _anthropic_create(self, body: bytes, origin: str) -> SimResponse:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._error("anthropic", 400, "The request body is not valid JSON.")
        requests = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(requests, list) or not requests:
            return self._error("anthropic", 400, "requests: expected a non-empty array")
        seen: set[str] = set()
        for i, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not isinstance(request.get("params"), dict):
                return self._error("anthropic", 400, f"requests.{i}: expected custom_id and params")
            if custom_id in seen:
                return self._error(
                    "anthropic", 400, f"requests.{i}.custom_id: {custom_id!r} is not unique"
                )
            seen.add(custom_id)
        batch = _AnthropicBatch("msgbatch_" + secrets.token_hex(12), requests, origin)
        _keep(self._anthropic, batch.id, batch)
        self._start(self._run_anthropic(batch))
        return self._json("anthropic", batch.doc())

    async def _run_anthropic(self, batch: _AnthropicBatch) -> None:
        headers = {"anthropic-version": _ANTHROPIC_VERSION}
        for request in batch.requests:
            custom_id = request["custom_id"]
            if batch.status == "canceling":
                batch.results.append({"custom_id": custom_id, "result": {"type": "canceled"}})
                continue
            if self._gap:
                await asyncio.sleep(self._gap)
            params = {**request["params"], "stream": False}
            response = await self._answer("POST", "/v1/messages", headers, orjson.dumps(params))
            answer = orjson.loads(await response.read())
            if response.status == 200:
                result = {"type": "succeeded", "message": answer}
            else:
                result = {"type": "errored", "error": answer}
            batch.results.append({"custom_id": custom_id, "result": result})
        batch.status = "ended"
        batch.ended_at = time.time()

    # --- OpenAI ---------------------------------------------------------------------

    def _openai_batch_call(
        self, method: str, rest: list[str], query: str, body: bytes
    ) -> SimResponse:
        if not rest:
            if method == "POST":
                return self._openai_create(body)
            if method == "GET":
                docs = [batch.doc() for batch in reversed(self._openai.values())]
                return self._json("openai", _page(docs, query, "openai"))
            return self._error("openai", 405, f"Method {method} not allowed")
        batch = self._openai.get(rest[0])
        if batch is None:
            return self._error("openai", 404, f"No batch found with id '{rest[0]}'.")
        action = rest[1] if len(rest) > 1 else None
        if action is None and method == "GET":
            return self._json("openai", batch.doc())
        if action == "cancel" and method == "POST":
            if batch.status in ("validating", "in_progress"):
                batch.status = "cancelling"
                batch.times["cancelling"] = int(time.time())
            return self._json("openai", batch.doc())
        return self._error("openai", 404, f"Not found: {method} {'/'.join(rest)}")

    def _openai_create(self, body: bytes) -> SimResponse:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._error("openai", 400, "The request body is not valid JSON.")
        if not isinstance(doc, dict):
            return self._error("openai", 400, "Expected a JSON object.")
        file = self._files.get(str(doc.get("input_file_id")))
        if file is None:
            return self._error("openai", 400, f"No file with id {doc.get('input_file_id')!r}.")
        endpoint = doc.get("endpoint")
        if endpoint not in ("/v1/chat/completions", "/v1/embeddings", "/v1/responses"):
            return self._error("openai", 400, f"endpoint: {endpoint!r} is not supported.")
        if doc.get("completion_window") != "24h":
            return self._error("openai", 400, "completion_window: only '24h' is supported.")
        metadata = doc.get("metadata")
        batch = _OpenAIBatch(
            "batch_" + secrets.token_hex(12),
            file.id,
            endpoint,
            "24h",
            metadata if isinstance(metadata, dict) else None,
        )
        _keep(self._openai, batch.id, batch)
        self._start(self._run_openai(batch, file))
        return self._json("openai", batch.doc())

    async def _run_openai(self, batch: _OpenAIBatch, file: _File) -> None:
        lines, errors = _input_lines(file.data, batch.endpoint)
        if self._gap:
            await asyncio.sleep(self._gap)
        if errors:
            batch.errors = errors
            batch.status = "failed"
            batch.times["failed"] = int(time.time())
            return
        if batch.status == "cancelling":
            batch.status = "cancelled"
            batch.times["cancelled"] = int(time.time())
            return
        batch.status = "in_progress"
        batch.times["in_progress"] = int(time.time())
        batch.total = len(lines)
        output: list[bytes] = []
        failed: list[bytes] = []
        for line in lines:
            if batch.status == "cancelling":
                break
            if self._gap:
                await asyncio.sleep(self._gap)
            response = await self._answer(
                "POST", line["url"], {}, orjson.dumps({**line["body"], "stream": False})
            )
            answer = orjson.loads(await response.read())
            out = {
                "id": "batch_req_" + secrets.token_hex(12),
                "custom_id": line["custom_id"],
                "response": {
                    "status_code": response.status,
                    "request_id": response.headers.get("x-request-id", ""),
                    "body": answer,
                },
                "error": None,
            }
            if response.status == 200:
                batch.completed += 1
                output.append(orjson.dumps(out) + b"\n")
            else:
                batch.failed += 1
                failed.append(orjson.dumps(out) + b"\n")
        if batch.status != "cancelling":
            batch.status = "finalizing"
            batch.times["finalizing"] = int(time.time())
        if output:
            batch.output_file_id = self._add_file(
                f"{batch.id}_output.jsonl", "batch_output", b"".join(output)
            )
        if failed:
            batch.error_file_id = self._add_file(
                f"{batch.id}_error.jsonl", "batch_output", b"".join(failed)
            )
        if batch.status == "cancelling":
            batch.status = "cancelled"
            batch.times["cancelled"] = int(time.time())
        else:
            batch.status = "completed"
            batch.times["completed"] = int(time.time())

    def _file_call(
        self, method: str, rest: list[str], body: bytes, content_type: str
    ) -> SimResponse:
        if not rest:
            if method != "POST":
                return self._error("openai", 405, f"Method {method} not allowed")
            try:
                form = parse_form(content_type, body)
            except Exception as error:
                return self._error("openai", 400, f"Invalid multipart body: {error}")
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or purpose is None:
                return self._error("openai", 400, "Both `file` and `purpose` are required.")
            file_id = self._add_file(
                upload.filename or "upload", purpose.data.decode(errors="replace"), upload.data
            )
            return self._json("openai", self._files[file_id].doc())
        file = self._files.get(rest[0])
        if file is None or method != "GET":
            return self._error("openai", 404, f"No such File object: {rest[0]}")
        if len(rest) > 1 and rest[1] == "content":
            return SimResponse(200, {"content-type": "application/octet-stream"}, file.data)
        return self._json("openai", file.doc())

    def _add_file(self, filename: str, purpose: str, data: bytes) -> str:
        file = _File("file-" + secrets.token_hex(12), filename, purpose, data)
        _keep(self._files, file.id, file)
        return file.id

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)


def _input_lines(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests of an OpenAI batch input file, and the errors of its bad lines (as the
    batch's `errors.data`, numbered from 1)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            line = None
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            errors.append(
                {"code": "invalid_json_line", "message": "This line is not valid JSON.",
                 "param": None, "line": number}
            )  # fmt: skip
        elif line.get("url") != endpoint or line.get("method") != "POST":
            errors.append(
                {"code": "mismatched_endpoint",
                 "message": f"The line's url must be {endpoint} with method POST.",
                 "param": "url", "line": number}
            )  # fmt: skip
        elif not isinstance(line.get("custom_id"), str):
            errors.append(
                {"code": "missing_required_parameter", "message": "custom_id is required.",
                 "param": "custom_id", "line": number}
            )  # fmt: skip
        else:
            lines.append(line)
    if not lines and not errors:
        errors.append(
            {"code": "empty_file", "message": "The input file has no requests.",
             "param": None, "line": None}
        )  # fmt: skip
    return lines, errors


def _page(docs: list[dict[str, Any]], query: str, fmt: WireFormat) -> dict[str, Any]:
    """One page of `docs` (newest first) as each provider pages its lists: Anthropic by
    `limit`, `after_id`, `before_id`; OpenAI by `limit`, `after`."""
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    try:
        limit = max(1, min(int(params.get("limit", "20")), 1000))
    except ValueError:
        limit = 20
    after = params.get("after_id" if fmt == "anthropic" else "after")
    ids = [doc["id"] for doc in docs]
    start = ids.index(after) + 1 if after in ids else 0
    page = docs[start : start + limit]
    has_more = start + limit < len(docs)
    if fmt == "anthropic":
        return {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    return {
        "object": "list",
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def _keep(kept: OrderedDict[str, Any], key: str, value: Any) -> None:
    kept[key] = value
    while len(kept) > _KEPT:
        kept.popitem(last=False)
