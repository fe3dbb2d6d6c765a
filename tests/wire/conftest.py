"""Stream fixtures: relay upstream bytes through a translator, read the result with an SDK.

`relay` feeds upstream SSE bytes to a translator in small network-sized pieces (events split
mid-line, as they arrive over TCP) through `SSEParser`, then calls `finish`, and returns the
bytes the client would receive. `openai_sdk_stream` / `anthropic_sdk_stream` serve those
bytes to the official SDK client as an HTTP streaming response and return what the SDK's own
stream accumulator assembles, so a test asserts what an application would actually see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import Message
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion

from tollhouse.wire.sse import SSEEvent, SSEParser

PIECE_SIZE = 7


class StreamTranslator(Protocol):
    def feed(self, event: SSEEvent) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


def _sse_client(body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


@pytest.fixture
def relay() -> Callable[[StreamTranslator, bytes], bytes]:
    def run(translator: StreamTranslator, upstream: bytes) -> bytes:
        parser = SSEParser()
        out: list[bytes] = []
        for start in range(0, len(upstream), PIECE_SIZE):
            for event in parser.feed(upstream[start : start + PIECE_SIZE]):
                out += translator.feed(event)
        for event in parser.flush():
            out += translator.feed(event)
        out += translator.finish()
        return b"".join(out)

    return run


@pytest.fixture
def openai_sdk_stream() -> Callable[[bytes], ChatCompletion]:
    """The completion `ChatCompletionStreamState` assembles (its snapshot, so that a
    `length` or `content_filter` finish is returned rather than raised by the parse step)."""

    def read(body: bytes) -> ChatCompletion:
        client = openai.OpenAI(
            api_key="test", base_url="http://gateway.test/v1", http_client=_sse_client(body)
        )
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        for chunk in client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            state.handle_chunk(chunk)
        return state.current_completion_snapshot

    return read


@pytest.fixture
def anthropic_sdk_stream() -> Callable[[bytes], Message]:
    def read(body: bytes) -> Message:
        client = anthropic.Anthropic(
            api_key="test", base_url="http://gateway.test", http_client=_sse_client(body)
        )
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            for _ in stream:
                pass
            return stream.get_final_message()

    return read
