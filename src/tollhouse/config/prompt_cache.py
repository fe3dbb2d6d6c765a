"""A route's `prompt_cache` section: automatic prompt-cache breakpoints on its Anthropic-format
deployments (stages/dispatch/cache_breakpoints.py) and the cache-hit ratio below which it
alerts (observability/prompt_cache_floor.py).

Apart from msgspec and the standard library, this module imports nothing, so that
`config/model.py` can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

CacheTTL = Literal["5m", "1h"]
# The floor assumed for a model the catalog publishes none for: the largest any catalog
# model has, so that no breakpoint is ever placed under a model's real minimum.
UNPUBLISHED_MIN_TOKENS = 4096


class PromptCachePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Off by default; `auto: true` turns the breakpoints on.

    `auto`: place `cache_control` breakpoints on each Anthropic-format attempt's request:
    the end of the system prompt, the latest turn, the user turn before it, the tools; at
    most 4 with the client's own, each only where the prefix it ends reaches the model's
    minimum cacheable length (the catalog's `prompt_cache.min_tokens`). A client's own
    breakpoints are never changed or moved. `ttl`: the retention of the breakpoints placed
    (`5m`, or `1h` at twice the input price per write).

    `hit_ratio_floor`: alert (kind `prompt_cache_floor`) when the route's cache-hit ratio
    (cache reads / all input tokens) over the last `floor_window_seconds` falls below it;
    a window with fewer than `floor_min_input_tokens` input tokens is too little to judge.
    """

    auto: bool = False
    ttl: CacheTTL = "5m"
    hit_ratio_floor: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    floor_window_seconds: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    floor_min_input_tokens: Annotated[int, msgspec.Meta(ge=1)] = 10_000


@dataclass(frozen=True, slots=True)
class AutoBreakpoints:
    """The breakpoints one deployment's requests get (stages/route/router.py puts them on
    its `Target`): their TTL and the model's minimum cacheable prefix, in tokens."""

    ttl: CacheTTL
    min_tokens: int

    @classmethod
    def of(cls, policy: PromptCachePolicy, min_tokens: int | None) -> AutoBreakpoints | None:
        """For a deployment whose model caches prefixes of `min_tokens` and more (None: the
        catalog publishes no figure) on a route with `policy`; None when the route places
        no breakpoints."""
        if not policy.auto:
            return None
        return cls(policy.ttl, UNPUBLISHED_MIN_TOKENS if min_tokens is None else min_tokens)
