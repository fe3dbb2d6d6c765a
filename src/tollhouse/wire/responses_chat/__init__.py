"""Translation between the OpenAI Responses and Chat Completions wire formats.

Used when a Responses client is routed to an upstream that speaks only Chat Completions
(OpenAI-compatible servers), and, composed with `wire/anthropic_openai/`, to Anthropic
Messages (`wire/responses_anthropic.py`): requests on the way in, whole answers and streams
on the way out. Pure functions and a small stateful stream translator; no I/O.
"""

from .answers import chat_answer_to_response
from .requests import responses_request_to_chat
from .streams import ChatToResponsesStream

__all__ = ["ChatToResponsesStream", "chat_answer_to_response", "responses_request_to_chat"]
