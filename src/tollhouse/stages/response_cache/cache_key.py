"""The key of a cached answer.

A hash of the request as it would be sent, minus what does not change the answer (`stream`,
`stream_options`, `metadata`, `user`), in the client's format, for the route's variant and
the deployments that serve it (a config version that moves the route to another model never
gets the old model's answers), under the tenant and the client's namespace. The tenant is
the client's gateway key id (a rotated secret keeps its answers), else whatever credential
it sent (hashed): no tenant is ever served another's answer, whatever namespace it names.
"""

from __future__ import annotations

import hashlib

import orjson

from tollhouse.call import Call
from tollhouse.stages.route import RoutePlan

_VOLATILE = frozenset({"stream", "stream_options", "metadata", "user"})


def cache_key(call: Call, plan: RoutePlan, namespace: str = "") -> str:
    tenant = call.key_id or call.headers.get("x-api-key") or call.headers.get("authorization") or ""
    request = {k: v for k, v in call.body.items() if k not in _VOLATILE}
    digest = hashlib.blake2b(digest_size=20)
    # Fixed-width tenant digest first, then the namespace ended by a byte no namespace
    # holds: no (tenant, namespace) pair can be spelt as another.
    digest.update(hashlib.sha256(tenant.encode()).digest())
    digest.update(namespace.encode())
    digest.update(b"\0")
    digest.update(call.client_format.encode())
    digest.update(call.endpoint.encode())
    # Variants of a route may differ only in their deployments: each keeps its own answers.
    digest.update((call.variant or "").encode())
    for target in plan.targets:
        digest.update(b"\0")
        digest.update(target.label.encode())
    digest.update(b"\0")
    digest.update(orjson.dumps(request, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()
