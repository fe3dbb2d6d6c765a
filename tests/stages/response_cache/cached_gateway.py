"""A gateway whose routes are all cached, for the response cache tests."""

from __future__ import annotations

import copy
from typing import Any

from tests.support import IN_PROCESS_CONFIG

HI = [{"role": "user", "content": "What is the capital of France?"}]


def cached_config(ttl: float = 60.0, **response_cache: Any) -> dict[str, Any]:
    """The test gateway's config (tests/support.py) with every route cached for `ttl`
    seconds, and `response_cache` as its store section."""
    config = copy.deepcopy(IN_PROCESS_CONFIG)
    for route in config["models"].values():
        route["cache"] = {"ttl_seconds": ttl}
    config["response_cache"] = response_cache
    return config
