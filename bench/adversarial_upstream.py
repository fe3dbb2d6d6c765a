#!/usr/bin/env python3
"""A careless provider for bench/adversarial.py: a loopback HTTP/1.1 upstream that speaks
just enough of the Anthropic Messages and OpenAI Chat Completions APIs, writes down what
it was sent, and echoes the credential it received when asked to fail.

    python bench/adversarial_upstream.py --port 18555 --record seen.jsonl

- `POST /v1/messages` (Anthropic) and `POST /v1/chat/completions` (OpenAI), whole answers
  or SSE streams (`"stream": true`), a few words of text and usage.
- Upstream model `echo-key`: a whole answer is a 400 error whose message carries the key
  it was sent (`x-api-key` or the bearer token); a stream starts normally, then its error
  event (Anthropic `event: error`, OpenAI `data: {"error": ...}`) carries the key.
  `echo-key-split`: the same, with the event carrying the key written in two parts cut in
  the middle of the key.
- Upstream model `firehose` (Anthropic streams): 16 MiB of text in 4 KiB deltas, written
  as fast as the gateway reads them (a client that never reads must not make the gateway
  hold them).
- Every request is appended to `--record` as one JSON line: method, path, every header
  (names lower-cased, values as sent), and the raw body (first 64 KiB, latin-1), so a run
  can tell which headers and which duplicate keys reached the provider.

Stdlib only; one event loop; keep-alive; Content-Length or chunked request bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import Any

TEXT_WORDS = ["Hello", " from", " the", " adversarial", " upstream", "."]
FIREHOSE_DELTAS = 4_096


def _key(headers: dict[str, str]) -> str:
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else auth


def _anthropic_message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_adversarial",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(TEXT_WORDS)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": len(TEXT_WORDS)},
    }


def _openai_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-adversarial",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(TEXT_WORDS)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }


def _sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def _anthropic_stream(model: str, echo: str | None) -> list[bytes]:
    message = _anthropic_message(model)
    message["content"] = []
    message["stop_reason"] = None
    message["usage"] = {"input_tokens": 5, "output_tokens": 0}
    events = [
        _sse("message_start", {"type": "message_start", "message": message}),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for word in TEXT_WORDS:
        delta = {"type": "text_delta", "text": word}
        events.append(
            _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
        if echo is not None:
            error = {"type": "api_error", "message": f"internal error for key {echo}"}
            events.append(_sse("error", {"type": "error", "error": error}))
            return events
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(TEXT_WORDS)},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return events


def _firehose(model: str) -> Iterator[bytes]:
    """An Anthropic stream of 16 MiB of text, 4 KiB a delta, as fast as the reader takes it."""
    message = _anthropic_message(model)
    message["content"] = []
    message["usage"] = {"input_tokens": 5, "output_tokens": 0}
    yield _sse("message_start", {"type": "message_start", "message": message})
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield _sse("content_block_start", block)
    delta = _sse(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "x" * 4096},
        },
    )
    for _ in range(FIREHOSE_DELTAS):
        yield delta
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": FIREHOSE_DELTAS * 1024},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def _openai_stream(model: str, echo: str | None) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-adversarial",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events = [_sse(None, chunk({"role": "assistant", "content": ""}))]
    for word in TEXT_WORDS:
        events.append(_sse(None, chunk({"content": word})))
        if echo is not None:
            error = {"message": f"internal error for key {echo}", "type": "server_error"}
            events.append(_sse(None, {"error": error}))
            return events
    events.append(_sse(None, chunk({}, "stop")))
    usage = chunk({})
    usage["choices"] = []
    usage["usage"] = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
    events += [_sse(None, usage), _sse(None, "[DONE]")]
    return events


class Upstream:
    def __init__(self, record: str | None) -> None:
        self._record = open(record, "a", buffering=1) if record else None  # noqa: SIM115

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                body += await reader.readexactly(size + 2)
                body = body[:-2]
                if size == 0:
                    await reader.readline()
                    break
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        if self._record is not None:
            self._record.write(
                json.dumps(
                    {
                        "method": method,
                        "path": path,
                        "headers": headers,
                        "body": body[:65536].decode("latin-1"),
                    }
                )
                + "\n"
            )
        await self._answer(writer, method, path, headers, body)
        return headers.get("connection", "").lower() != "close"

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {}
        model = str(doc.get("model", "unknown"))
        echo = _key(headers) if model in ("echo-key", "echo-key-split") else None
        anthropic = path.endswith("/messages")
        if method != "POST" or path not in ("/v1/messages", "/v1/chat/completions"):
            self._whole(writer, 404, {"error": {"type": "not_found_error", "message": path}})
        elif doc.get("stream"):
            events: Iterable[bytes]
            if model == "firehose" and anthropic:
                events = _firehose(model)
            else:
                events = (_anthropic_stream if anthropic else _openai_stream)(model, echo)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for event in events:
                # `echo-key-split`: an event carrying the key leaves in two writes, cut in the
                # middle of the key, so a redaction that looks at one read at a time misses it.
                cut = event.find(echo.encode()) + len(echo) // 2 if echo else -1
                parts = (
                    [event[:cut], event[cut:]] if model == "echo-key-split" and cut > 0 else [event]
                )
                for part in parts:
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    if len(parts) > 1:
                        await asyncio.sleep(0.05)
            writer.write(b"0\r\n\r\n")
        elif echo is not None:
            message = f"invalid request for key {echo}"
            error = (
                {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
                if anthropic
                else {"error": {"message": message, "type": "invalid_request_error"}}
            )
            self._whole(writer, 400, error)
        else:
            self._whole(
                writer, 200, _anthropic_message(model) if anthropic else _openai_completion(model)
            )
        await writer.drain()

    @staticmethod
    def _whole(writer: asyncio.StreamWriter, status: int, doc: dict[str, Any]) -> None:
        payload = json.dumps(doc).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(payload), payload)
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", help="append every request here as a JSON line")
    args = parser.parse_args()
    upstream = Upstream(args.record)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
