"""A whole Chat Completions answer as a Responses response.

The assistant's text becomes one `message` output item, each tool call a `function_call`
item (its `call_id` the chat tool call's id); `finish_reason: length` makes the response
`incomplete` (`max_output_tokens`), as OpenAI reports a cut response. Usage keeps every
token: `prompt_tokens` is `input_tokens` (cached ones in `input_tokens_details`),
`completion_tokens` is `output_tokens` (reasoning ones in `output_tokens_details`).
"""

from __future__ import annotations

import uuid
from typing import Any

from tollhouse.wire.responses import message_item, response_object, usage_object


def chat_answer_to_response(
    doc: dict[str, Any], request: dict[str, Any], response_id: str, model: str
) -> dict[str, Any]:
    choices = doc.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        output.append(message_item(f"msg_{uuid.uuid4().hex}", text))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            function_call_item(
                f"fc_{uuid.uuid4().hex}",
                str(call.get("id")),
                str(function.get("name")),
                str(function.get("arguments") or ""),
            )
        )
    cut = choice.get("finish_reason") == "length"
    return response_object(
        response_id=response_id,
        model=model,
        output=output,
        usage=chat_usage_to_responses(doc.get("usage")),
        request=request,
        status="incomplete" if cut else "completed",
        incomplete_reason="max_output_tokens" if cut else None,
    )


def function_call_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def chat_usage_to_responses(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    return usage_object(
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int((prompt or {}).get("cached_tokens") or 0) if isinstance(prompt, dict) else 0,
        int((completion or {}).get("reasoning_tokens") or 0) if isinstance(completion, dict) else 0,
    )
