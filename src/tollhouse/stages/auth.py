"""Who is calling: the gateway key a request presents, checked against the key store.

With `keys.required`, every call must present an active gateway key (`x-api-key`, as the
Anthropic SDK sends it, or `Authorization: Bearer`, as the OpenAI SDK does) allowed to use
the model it asks for; the key's id, team and project go on the call for limits, budgets
and the ledger. A key allowed to act for its end users also names them: the end user in
the request (`metadata.user_id` / `user`) becomes the call's end user, with limits of its
own. Without `keys.required` the gateway is open: calls are anonymous, and an end user a
request names is still held to the configured per-end-user limits.
"""

from __future__ import annotations

from collections.abc import Mapping

from tollhouse.call import Call
from tollhouse.config.model import KeysConfig
from tollhouse.errors import ServiceUnavailable
from tollhouse.ports.keys.base import KeyStoreUnavailable
from tollhouse.ports.keys.key_ring import KeyRing, check_model
from tollhouse.ports.keys.record import KeyRecord


def presented_secret(headers: Mapping[str, str]) -> str | None:
    secret = headers.get("x-api-key")
    if secret:
        return secret.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class Authenticator:
    def __init__(self, config: KeysConfig, ring: KeyRing | None) -> None:
        self.required = config.required
        self.ring = ring

    async def identify(self, headers: Mapping[str, str]) -> KeyRecord | None:
        """The key the request presents (None on an open gateway), before its body is even
        read: a caller without a valid key learns nothing about the request it sent.
        Raises AuthError (401) or ServiceUnavailable (503)."""
        if not self.required or self.ring is None:
            return None
        try:
            return await self.ring.authenticate(presented_secret(headers))
        except KeyStoreUnavailable as error:
            raise ServiceUnavailable(
                "the gateway can't check API keys right now (key store unavailable); retry shortly",
                headers={"retry-after": "1"},
            ) from error

    def authorize(self, call: Call, key: KeyRecord | None) -> None:
        """Check `key` may use the model `call` asks for (PermissionDenied, 403) and put who
        is calling on the call."""
        if key is None:
            call.end_user = call.requested_end_user()
            return
        check_model(key, call.model)
        attribute(call, key)
        if key.end_users:
            call.end_user = call.requested_end_user()


def attribute(call: Call, key: KeyRecord) -> None:
    """Put the key's owner on `call` (its record and metrics say whose call it was)."""
    call.key_id = key.key_id
    call.team = key.team
    call.project = key.project
