"""Identifiers shaped like the providers' own (`msg_01…`, `toolu_01…`, `chatcmpl-…`,
`call_…`, `req_…`). Unique per call, deliberately not derived from the request: two identical
requests are still two calls."""

from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_rng = random.Random()  # seeded from os.urandom; ids need uniqueness, not secrecy


def new_id(prefix: str, length: int) -> str:
    return prefix + "".join(_rng.choices(_ALPHABET, k=length))


def anthropic_message_id() -> str:
    return new_id("msg_01", 22)


def anthropic_tool_use_id() -> str:
    return new_id("toolu_01", 22)


def openai_completion_id() -> str:
    return new_id("chatcmpl-", 29)


def openai_tool_call_id() -> str:
    return new_id("call_", 24)


def request_id() -> str:
    return new_id("req_011C", 20)
