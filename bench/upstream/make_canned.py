"""Write the canned upstream bodies served by bench/upstream/nginx.conf (via canned.js).

Realistic, byte-for-byte fixed replies of a short answer (~40 output tokens), in the shapes the
real APIs send today:

- anthropic.json  Anthropic Message (non-streaming /v1/messages)
- anthropic.sse   the full Anthropic event sequence: message_start, content_block_start, ping,
                  content_block_delta x N, content_block_stop, message_delta, message_stop
- openai.json     OpenAI chat.completion
- openai.sse      chat.completion.chunk frames (role, content deltas, finish_reason, the
                  include_usage chunk) and `data: [DONE]`

and bodies.js, the same four bodies as an njs module imported by canned.js.

Run it again only to change the bodies (the output is committed): python3 make_canned.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "canned"

TEXT = (
    "Paris is the capital of France. It sits on the Seine in the north of the country and "
    "has been the seat of government since the late tenth century, apart from a few "
    "short interruptions."
)
INPUT_TOKENS = 58
CREATED = 1764048000

ANTHROPIC_ID = "msg_01BenchCannedReply0000001"
ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"
OPENAI_ID = "chatcmpl-BenchCannedReply000000000001"
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
FINGERPRINT = "fp_bench000001"


def _pieces(text: str) -> list[str]:
    """Split like a tokenizer would, roughly: a word with its leading space per piece."""
    return re.findall(r"\s*\S+", text)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


PIECES = _pieces(TEXT)
OUTPUT_TOKENS = len(PIECES)


def anthropic_json() -> str:
    return _dumps(
        {
            "id": ANTHROPIC_ID,
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": OUTPUT_TOKENS,
                "service_tier": "standard",
            },
        }
    )


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {_dumps(data)}\n\n"


def anthropic_sse() -> str:
    out = [
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": ANTHROPIC_ID,
                    "type": "message",
                    "role": "assistant",
                    "model": ANTHROPIC_MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": INPUT_TOKENS,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "cache_creation": {
                            "ephemeral_5m_input_tokens": 0,
                            "ephemeral_1h_input_tokens": 0,
                        },
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
        ),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _event("ping", {"type": "ping"}),
    ]
    out += [
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
        )
        for p in PIECES
    ]
    out += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(out)


def _usage() -> dict[str, object]:
    return {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_json() -> str:
    return _dumps(
        {
            "id": OPENAI_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": OPENAI_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": TEXT,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
    )


def _chunk(delta: dict[str, object], finish: str | None) -> str:
    return (
        "data: "
        + _dumps(
            {
                "id": OPENAI_ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": OPENAI_MODEL,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                "usage": None,
            }
        )
        + "\n\n"
    )


def openai_sse() -> str:
    out = [_chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    out += [_chunk({"content": p}, None) for p in PIECES]
    out.append(_chunk({}, "stop"))
    out.append(
        "data: "
        + _dumps(
            {
                "id": OPENAI_ID,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": OPENAI_MODEL,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [],
                "usage": _usage(),
            }
        )
        + "\n\n"
    )
    out.append("data: [DONE]\n\n")
    return "".join(out)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    bodies = {
        "anthropic.json": anthropic_json(),
        "anthropic.sse": anthropic_sse(),
        "openai.json": openai_json(),
        "openai.sse": openai_sse(),
    }
    for name, body in bodies.items():
        (OUT / name).write_text(body, encoding="utf-8")
        print(f"{name}: {len(body.encode())} bytes")
    # The same bodies as an njs module, so nginx holds them in memory (no file I/O per request).
    exports = {
        "anthropicJson": bodies["anthropic.json"],
        "anthropicSse": bodies["anthropic.sse"],
        "openaiJson": bodies["openai.json"],
        "openaiSse": bodies["openai.sse"],
    }
    lines = ["// Generated by make_canned.py from canned/*: do not edit by hand.", ""]
    lines += [f"const {k} = {json.dumps(v)};" for k, v in exports.items()]
    lines += ["", "export default { " + ", ".join(exports) + " };", ""]
    (HERE / "bodies.js").write_text("\n".join(lines), encoding="utf-8")
    print("bodies.js written")


if __name__ == "__main__":
    main()
