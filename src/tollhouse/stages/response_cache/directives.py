"""What a client asks of the response cache for one call, in its request headers.

- `cache-control: no-cache` (or `max-age=0`): don't answer from the cache, but store the
  fresh answer; `no-store`: neither look up nor store. Other directives are ignored.
- `x-tollhouse-cache-namespace: NAME`: a namespace of the client's own within its tenant
  (1-64 letters, digits, `.`, `_`, `:`, `-`), so that e.g. two environments or prompt
  versions sharing a key keep apart answers. It never reaches across tenants: the tenant
  is the gateway key (cache_key.py), the namespace only divides a tenant's answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tollhouse.errors import BadRequest

NAMESPACE_HEADER = "x-tollhouse-cache-namespace"
_NAMESPACE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True, slots=True)
class CacheDirectives:
    lookup: bool = True
    store: bool = True
    namespace: str = ""


DEFAULT = CacheDirectives()


def cache_directives(headers: Mapping[str, str]) -> CacheDirectives:
    """The directives in `headers`; `BadRequest` naming the header for a namespace that
    is not one."""
    control = headers.get("cache-control")
    namespace = headers.get(NAMESPACE_HEADER)
    if control is None and namespace is None:
        return DEFAULT
    lookup = store = True
    if control is not None:
        for directive in control.lower().split(","):
            name = directive.strip().replace(" ", "")
            if name == "no-store":
                lookup = store = False
            elif name in ("no-cache", "max-age=0"):
                lookup = False
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        raise BadRequest(
            f"{NAMESPACE_HEADER}: expected 1-64 letters, digits, '.', '_', ':' or '-'",
            param=NAMESPACE_HEADER,
        )
    return CacheDirectives(lookup, store, namespace or "")
