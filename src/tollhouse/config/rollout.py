"""The rollout settings of a route: how traffic is split between its variants
(stages/route/variant_split.py).

Apart from msgspec, this module imports nothing, so that `config/model.py` can hold it
without an import cycle.
"""

from __future__ import annotations

from typing import Literal

import msgspec

# What a call is kept on its variant by: its end user (`metadata.user_id` / `user`), its
# session (`x-session-id` / `x-tollhouse-session-id`) or its gateway key.
StickyKey = Literal["end_user", "session", "key"]


class SplitConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a call finds its variant: the first of `sticky` the call has is hashed with the
    route's name and `seed` into one of 10,000 buckets; the variants own consecutive
    ranges of buckets sized by their weights. A call with none of them is split at random,
    per call. Change `seed` to deal the users out anew for a new experiment."""

    sticky: tuple[StickyKey, ...] = ("end_user", "session", "key")
    seed: str = ""
