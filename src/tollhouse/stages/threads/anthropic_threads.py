"""Anthropic message threads (beta `message-threads-2026-08-12`), held by the gateway.

The SDKs' `beta.messages.thread()` and tool runners send a thread's first turn with the whole
conversation and `thread: {type: "create"}`, and each later turn with only its new messages
and `thread: {type: "continue", previous_message_id}` (the `id` of the answer it continues),
leaving out `system` and `tools`, which the thread keeps from its `create`.

The gateway holds the conversation itself, so a thread works whatever serves each turn:
`expand` (before routing) turns a continuation back into the whole request, so fallbacks,
providers of either format, request shaping and admission all see the full history, and no
upstream sees `thread`. `record` (after dispatch) gives the answer an id of the gateway's and
keeps the conversation up to it under that id, for the next turn; a stream is put back
together as it passes, and its `message_stop` leaves only once the turn is kept, so the
SDK's next turn never races the store.

A continuation the gateway cannot honour (an unknown, expired or already continued id, or
another key's) is refused with 404 `thread_not_found`, on which the SDKs resend the whole
conversation under a new thread: never answered without its history. With conversations
off, a threaded request is refused with 400 `thread_unsupported_request` (the tool runners
then continue without a thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from tollhouse.call import Call
from tollhouse.errors import ThreadFingerprintMismatch, ThreadNotFound, ThreadUnsupported
from tollhouse.stages.threads.held_conversations import HeldConversations, StoreFailed
from tollhouse.types import Reply
from tollhouse.wire.anthropic_message_assembly import AnthropicMessageAssembly
from tollhouse.wire.sse import SSEParser, frame_event, frame_json

THREADS_BETA = "message-threads-2026-08-12"
# What a thread keeps from its `create`; a continuation may repeat them only unchanged.
_THREAD_FIELDS = ("system", "tools")


@dataclass(slots=True)
class ThreadTurn:
    """A threaded call's turn: whose, which turn it continues (None for a `create`), the id
    its answer gets, and the whole request's thread fields and messages."""

    tenant: str
    previous_id: str | None
    answer_id: str
    fields: dict[str, Any]
    messages: list[Any]


class AnthropicThreads:
    def __init__(self, conversations: HeldConversations) -> None:
        self.conversations = conversations

    async def expand(self, call: Call) -> None:
        """Make a threaded Anthropic request the whole request it stands for (see the
        module's docstring); nothing for any other call."""
        thread = call.body.get("thread") if call.endpoint == "messages" else None
        if not isinstance(thread, dict) or call.client_format != "anthropic":
            return
        if not self.conversations.enabled:
            raise ThreadUnsupported(
                "this gateway holds no conversations (conversations.backend is off); "
                "send the whole conversation without `thread`",
                param="thread",
            )
        body = {k: v for k, v in call.body.items() if k != "thread"}
        tenant = self.conversations.tenant(call)
        previous: str | None = None
        if thread.get("type") == "continue":
            previous = str(thread["previous_message_id"])
            stored = await self._stored(tenant, previous)
            for field in _THREAD_FIELDS:
                if field in body and body[field] != stored.get(field):
                    raise ThreadFingerprintMismatch(
                        f"{field}: differs from the `{field}` this thread was created with; "
                        f"send it unchanged or leave it out, or start a new thread",
                        param=field,
                    )
                if field in stored:
                    body[field] = stored[field]
            body["messages"] = [*stored.get("messages", ()), *body.get("messages", ())]
        call.thread = ThreadTurn(
            tenant=tenant,
            previous_id=previous,
            answer_id=f"msg_{call.request_id}",
            fields={field: body[field] for field in _THREAD_FIELDS if field in body},
            messages=body["messages"],
        )
        call.body = body
        call.raw_body = orjson.dumps(body)
        call.headers = _without_threads_beta(call.headers)

    async def _stored(self, tenant: str, previous: str) -> dict[str, Any]:
        try:
            stored = await self.conversations.load(tenant, previous)
        except StoreFailed as failure:
            raise ThreadNotFound(
                f"the gateway cannot read its conversations right now ({failure}); "
                "send the whole conversation with thread type create",
                param="thread.previous_message_id",
            ) from None
        if stored is None:
            raise ThreadNotFound(
                f"thread.previous_message_id {previous!r}: this gateway holds no conversation "
                "for your key that continues from it (unknown, expired or already continued); "
                "send the whole conversation with thread type create",
                param="thread.previous_message_id",
            )
        return stored

    async def record(self, call: Call, reply: Reply) -> Reply:
        """Give a threaded call's answer the gateway's id and keep the conversation up to
        it (a stream as it ends); `reply` otherwise as it is."""
        turn = call.thread
        if turn is None or reply.status != 200 or call.degraded:
            return reply
        if reply.stream is not None:
            reply.stream = self._recorded_stream(turn, reply.stream)
            return reply
        answer = orjson.loads(reply.body)
        if isinstance(answer, dict):
            answer["id"] = turn.answer_id
            reply.body = orjson.dumps(answer)
            await self._keep(turn, answer.get("content"))
        return reply

    async def _recorded_stream(
        self, turn: ThreadTurn, stream: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        parser = SSEParser()
        assembly = AnthropicMessageAssembly()
        try:
            async for chunk in stream:
                out: list[bytes] = []
                for event in parser.feed(chunk):
                    try:
                        doc = event.json()
                    except orjson.JSONDecodeError:
                        out.append(frame_event(event.event, event.data))
                        continue
                    if event.event == "message_start" and isinstance(doc, dict):
                        message = doc.get("message")
                        if isinstance(message, dict):
                            message["id"] = turn.answer_id
                        out.append(frame_json(event.event, doc))
                    else:
                        out.append(frame_event(event.event, event.data))
                    assembly.feed(event.event, doc)
                    if assembly.message is not None and event.event == "message_stop":
                        await self._keep(turn, assembly.message.get("content"))
                if out:
                    yield b"".join(out)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _keep(self, turn: ThreadTurn, content: object) -> None:
        if not isinstance(content, list):
            return
        document = {
            **turn.fields,
            "messages": [*turn.messages, {"role": "assistant", "content": content}],
        }
        await self.conversations.keep(turn.tenant, turn.answer_id, document, turn.previous_id)


def _without_threads_beta(headers: Any) -> dict[str, str]:
    """The client's headers without the threads beta, which only the gateway acts on."""
    out = dict(headers)
    betas = out.get("anthropic-beta")
    if betas:
        kept = [b.strip() for b in betas.split(",") if b.strip() and b.strip() != THREADS_BETA]
        if kept:
            out["anthropic-beta"] = ",".join(kept)
        else:
            del out["anthropic-beta"]
    return out
