"""Translation between the Anthropic Messages and OpenAI Chat Completions wire formats.

Used when a client of one format is routed to an upstream of the other: requests on the way
in, whole responses, streams and error bodies on the way out. Pure functions and small
stateful stream translators over plain dicts; no I/O.
"""

from .errors import translate_error_body
from .requests import anthropic_request_to_openai, openai_request_to_anthropic
from .responses import anthropic_response_to_openai, openai_response_to_anthropic
from .stop_reasons import ANTHROPIC_TO_OPENAI_FINISH, OPENAI_TO_ANTHROPIC_STOP
from .streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream

__all__ = [
    "ANTHROPIC_TO_OPENAI_FINISH",
    "OPENAI_TO_ANTHROPIC_STOP",
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
    "translate_error_body",
]
