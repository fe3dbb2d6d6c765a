"""Keep the gateway's own provider key out of everything an upstream sends back.

An upstream may echo the credential it received (in an error body, or in an error event in
the middle of a 200 stream); whatever the gateway relays to its client then carries
`[REDACTED]` instead. A stream is redacted chunk by chunk as it passes, with no buffering:
only a chunk whose end could begin the key (never a chunk ending at an event's blank line,
since no key starts with a newline) holds those few bytes back until the next chunk, so a key
split across two chunks is caught too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tollhouse.providers.base import UpstreamResponse, WrappedResponse

REDACTED = b"[REDACTED]"


class SecretRedactor:
    """Replaces one secret in a whole body or in a stream of chunks."""

    __slots__ = ("_first", "_secret")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._first = secret[:1]

    def whole(self, data: bytes) -> bytes:
        return data.replace(self._secret, REDACTED) if self._secret in data else data

    async def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        secret = self._secret
        held = b""
        async for chunk in chunks:
            data = held + chunk if held else chunk
            if secret in data:
                data = data.replace(secret, REDACTED)
            if data.endswith(b"\n"):  # the usual chunk: no key goes on past a newline
                held = b""
                yield data
                continue
            cut = self._partial_key_at(data)
            held = data[cut:]
            if cut:
                yield data[:cut] if held else data
        if held:
            yield held

    def _partial_key_at(self, data: bytes) -> int:
        """Where the longest tail of `data` that begins the secret starts (len: none)."""
        size = len(data)
        at = data.find(self._first, max(0, size - len(self._secret) + 1))
        while at >= 0:
            if self._secret.startswith(data[at:]):
                return at
            at = data.find(self._first, at + 1)
        return size


class RedactedResponse(WrappedResponse):
    """An upstream response whose body, whole or streamed, never shows the secret."""

    def __init__(self, response: UpstreamResponse, redactor: SecretRedactor) -> None:
        super().__init__(response)
        self._redactor = redactor

    async def read(self) -> bytes:
        return self._redactor.whole(await self._response.read())

    def iter_chunks(self) -> AsyncIterator[bytes]:
        return self._redactor.stream(self._response.iter_chunks())
