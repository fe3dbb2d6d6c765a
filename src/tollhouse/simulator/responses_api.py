"""The simulated OpenAI's Responses API (`POST /v1/responses`): the request read as the
Chat Completions request it stands for (`wire/responses_chat`), answered by the same
planned answer, and rendered as a response or its stream of typed events.

Asked for `reasoning`, the answer starts with a `reasoning` item (an empty summary and an
opaque id, as OpenAI shows reasoning it keeps to itself) whose tokens are counted in
`output_tokens_details.reasoning_tokens` and `output_tokens`.
"""

from __future__ import annotations

from typing import Any

from tollhouse.errors import BadRequest
from tollhouse.simulator.answer import Answer
from tollhouse.simulator.ids import new_id
from tollhouse.simulator.openai_response import Completion, OpenAIUsage, completion_doc
from tollhouse.simulator.request_checks import InvalidRequest
from tollhouse.simulator.response import StreamEvent
from tollhouse.tokens.estimate import text_tokens
from tollhouse.wire.responses import EventWriter, stream_error_event
from tollhouse.wire.responses_chat import chat_answer_to_response, responses_request_to_chat

REASONING_TOKENS = 24


def chat_request(doc: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions request a Responses request stands for; InvalidRequest as
    OpenAI words a bad one."""
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if "input" not in doc:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    try:
        return responses_request_to_chat(doc, model)
    except BadRequest as exc:
        raise InvalidRequest(exc.message, param=exc.param) from None


def response_doc(
    doc: dict[str, Any], completion: Completion, answer: Answer, usage: OpenAIUsage
) -> dict[str, Any]:
    chat = completion_doc(completion, [answer], usage)
    response = chat_answer_to_response(chat, doc, new_id("resp_", 48), completion.model)
    if _reasons(doc):
        response["output"].insert(0, {"type": "reasoning", "id": new_id("rs_", 48), "summary": []})
        details = response["usage"]["output_tokens_details"]
        details["reasoning_tokens"] = REASONING_TOKENS
    return response


def reasoning_tokens(doc: dict[str, Any]) -> int:
    return REASONING_TOKENS if _reasons(doc) else 0


def stream_events(response: dict[str, Any]) -> list[StreamEvent]:
    """The events of `response`'s stream, each text delta paced by its tokens."""
    writer = EventWriter()
    events = [StreamEvent(frame, 0) for frame in writer.opening(response)]
    for index, item in enumerate(response["output"]):
        for frame in writer.item_events(index, item):
            tokens = 0
            if b"response.output_text.delta" in frame[:60]:
                tokens = text_tokens(frame.decode())
            events.append(StreamEvent(frame, tokens))
    events.append(StreamEvent(writer.closing(response), 0))
    return events


def stream_error_frame(message: str) -> bytes:
    return stream_error_event(message, 500)


def _reasons(doc: dict[str, Any]) -> bool:
    reasoning = doc.get("reasoning")
    return isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none")
