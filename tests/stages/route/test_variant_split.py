"""The split of a route between its variants: deterministic, sticky, proportional, and the
same in every process; the layout keeps callers in a canary as its weight grows."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

from tests.support import IN_PROCESS_CONFIG

from tollhouse.call import Call
from tollhouse.catalog.models import load_catalog
from tollhouse.config import parse_config
from tollhouse.gateway_parts import build_parts
from tollhouse.stages.route import Router
from tollhouse.stages.route.variant_split import BUCKETS, sticky_bucket


def config(canary: float, **split: Any) -> dict[str, Any]:
    route = {
        "deployments": [{"provider": "sim-anthropic", "model": "claude-haiku-4-5"}],
        "variants": {
            "control": {"weight": 100 - canary},
            "canary": {"weight": canary, "system": {"mode": "append", "text": "Be brief."}},
        },
        "split": split,
    }
    return {**IN_PROCESS_CONFIG, "models": {"support": route}}


def router(doc: dict[str, Any]) -> Router:
    parsed = parse_config(doc)
    return Router(parsed, build_parts(parsed).providers, load_catalog())


def call(user: str | None = None, headers: dict[str, str] | None = None) -> Call:
    body: dict[str, Any] = {"model": "support", "max_tokens": 5, "messages": []}
    if user is not None:
        body["metadata"] = {"user_id": user}
    return Call("anthropic", "messages", body, b"", headers or {})


def variants_of(r: Router, users: list[str]) -> dict[str, str]:
    out = {}
    for user in users:
        c = call(user)
        r.route(c, None)
        assert c.variant is not None
        out[user] = c.variant
    return out


USERS = [f"user-{i}" for i in range(10_000)]


def test_a_ten_percent_canary_gets_ten_percent_of_10000_users_within_one_point() -> None:
    shares = Counter(variants_of(router(config(10)), USERS).values())
    assert 900 <= shares["canary"] <= 1100, shares


def test_a_user_in_the_canary_at_10_percent_is_still_in_it_at_50() -> None:
    at_10 = variants_of(router(config(10)), USERS[:1000])
    at_50 = variants_of(router(config(50)), USERS[:1000])
    in_canary = [u for u, v in at_10.items() if v == "canary"]
    assert in_canary, "some of 1000 users are in a 10 % canary"
    assert all(at_50[u] == "canary" for u in in_canary)
    assert sum(v == "canary" for v in at_50.values()) > len(in_canary)


def test_rolled_back_to_zero_nobody_is_in_the_canary_and_at_100_everybody_is() -> None:
    assert set(variants_of(router(config(0)), USERS[:1000]).values()) == {"control"}
    assert set(variants_of(router(config(100)), USERS[:1000]).values()) == {"canary"}


def test_a_new_snapshot_of_the_same_config_splits_every_user_the_same_way() -> None:
    assert variants_of(router(config(30)), USERS[:1000]) == variants_of(
        router(config(30)), USERS[:1000]
    )


def test_another_process_puts_every_user_in_the_same_bucket() -> None:
    """No per-process salt (Python's str hash is one): a gateway on another host agrees."""
    users = USERS[:1000]
    script = (
        "import sys\n"
        "from tollhouse.stages.route.variant_split import sticky_bucket\n"
        "for line in sys.stdin.read().split():\n"
        "    print(sticky_bucket('support', 'seed', 'end_user', line))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input="\n".join(users),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    theirs = [int(line) for line in done.stdout.split()]
    assert theirs == [sticky_bucket("support", "seed", "end_user", u) for u in users]


def test_a_new_seed_deals_the_users_out_anew() -> None:
    first = variants_of(router(config(50)), USERS[:1000])
    reseeded = variants_of(router(config(50, seed="experiment-2")), USERS[:1000])
    moved = sum(first[u] != reseeded[u] for u in first)
    assert 350 < moved < 650  # about half, independently


def test_the_session_keeps_a_caller_on_its_variant_when_no_end_user_is_named() -> None:
    r = router(config(50))
    seen = set()
    for _ in range(20):
        c = call(headers={"x-session-id": "sess-42"})
        r.route(c, None)
        seen.add(c.variant)
    assert len(seen) == 1


def test_a_call_with_no_sticky_key_is_split_at_random_in_proportion() -> None:
    r = router(config(20))
    shares: Counter[str | None] = Counter()
    for _ in range(5000):
        c = call()
        r.route(c, None)
        shares[c.variant] += 1
    assert 800 <= shares["canary"] <= 1200, shares  # 20 % of 5000, ±5.6 sigma


def test_buckets_cover_the_whole_range_evenly() -> None:
    buckets = [sticky_bucket("r", "", "end_user", u) for u in USERS]
    assert min(buckets) >= 0
    assert max(buckets) < BUCKETS
    tenths = Counter(b * 10 // BUCKETS for b in buckets)
    assert all(900 <= n <= 1100 for n in tenths.values()), tenths


def test_the_canary_owns_the_top_buckets_and_the_control_the_bottom() -> None:
    split = router(config(10)).splits["support"]
    assert split.ranges == {"control": (0, 9000), "canary": (9000, 10000)}
