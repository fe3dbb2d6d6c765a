"""Cache: answers the response cache holds, served instead of calling an upstream.

Read in the order a call meets them:

- `directives`: what the client asked of the cache for this call (`cache-control:
  no-cache` / `no-store`, the `x-tollhouse-cache-namespace` header).
- `cache_key`: the key of a request, per tenant and namespace, for the route's variant and
  deployments.
- `exact_match`: the stage itself: a lookup before dispatch, a stored answer after it,
  the stale answer graceful degradation may serve, `x-tollhouse-cache` on every answer.
- `kept_stream`: a streamed answer assembled as it is relayed, and stored once complete.

The answers live behind the cache port (ports/cache: in process, SQLite or Redis).
"""

from tollhouse.stages.response_cache.exact_match import CACHE_HEADER, ResponseCache

__all__ = ["CACHE_HEADER", "ResponseCache"]
