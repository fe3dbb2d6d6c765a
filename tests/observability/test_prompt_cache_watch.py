"""Prompt-cache visibility: the cache-hit ratio by route, model and system prompt on
`/metrics` after real calls through the SDKs on the simulator, label sets no client can grow
without bound, and the `prompt_cache_floor` alert of a route whose ratio falls under its
configured floor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from tests.observability.test_metrics import scrape, value
from tests.support import IN_PROCESS_CONFIG, hermetic_gateway

from tollhouse.accounting.call_text import system_prompt_hash
from tollhouse.config import parse_config
from tollhouse.observability.alert_rules import HitRatioFloorRule
from tollhouse.observability.alerts import Alerts
from tollhouse.observability.metrics import OTHER
from tollhouse.observability.prompt_cache_watch import (
    NO_SYSTEM_PROMPT,
    SYSTEM_PROMPTS_PER_ROUTE,
    PromptCacheWatch,
)
from tollhouse.server.app import create_app
from tollhouse.server.runner import BackgroundServer

SONNET = "claude-sonnet-4-5"
HANDBOOK = "Support handbook, section on refunds and returns. " * 150  # about 1,900 tokens
HI: Any = [{"role": "user", "content": "Where is my order?"}]
ROUTES: dict[str, Any] = {
    "support": {
        "deployments": [{"provider": "sim-anthropic", "model": SONNET}],
        "prompt_cache": {"auto": True},
    },
    "floored": {
        "deployments": [{"provider": "sim-anthropic", "model": SONNET}],
        "prompt_cache": {
            "auto": True,
            "hit_ratio_floor": 0.5,
            "floor_window_seconds": 60,
            "floor_min_input_tokens": 3000,
        },
    },
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Alerts]]:
    gateway = hermetic_gateway({**IN_PROCESS_CONFIG, "models": ROUTES})
    with BackgroundServer(create_app(gateway)) as server:
        yield server.url, gateway.alerts


def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)


def test_metrics_show_the_hit_ratio_by_route_model_and_system_prompt(
    served: tuple[str, Alerts],
) -> None:
    url = served[0]
    system = HANDBOOK + " Edition: metrics."
    for _ in range(3):
        claude(url).messages.create(model="support", max_tokens=5, system=system, messages=HI)
    samples = scrape(url)
    labels = {"route": "support", "model": SONNET, "system_prompt": prompt_hash(system)}
    read = value(samples, "tollhouse_prompt_cache_tokens_total", part="cache_read", **labels)
    written = value(samples, "tollhouse_prompt_cache_tokens_total", part="cache_write", **labels)
    uncached = value(samples, "tollhouse_prompt_cache_tokens_total", part="uncached", **labels)
    assert written > 1024
    assert read == 2 * written  # the second and third calls read what the first wrote
    ratio = value(samples, "tollhouse_prompt_cache_hit_ratio", **labels)
    assert ratio == pytest.approx(read / (read + written + uncached))
    assert 0.6 < ratio < 0.67


def prompt_hash(system: str) -> str:
    found = system_prompt_hash({"system": system}, "anthropic")
    assert found is not None
    return found


def test_a_route_under_its_floor_alerts_once_and_says_so_on_metrics(
    served: tuple[str, Alerts],
) -> None:
    url, alerts = served
    # Each call a new system prompt: nothing is ever read back, the ratio stays at 0.
    for n in range(3):
        claude(url).messages.create(
            model="floored", max_tokens=5, system=f"{HANDBOOK} Edition {n}.", messages=HI
        )
    events = [event for event in alerts.events if event.kind == "prompt_cache_floor"]
    assert [event.status for event in events] == ["firing"]
    assert events[0].details["route"] == "floored"
    assert events[0].details["hit_ratio"] == 0.0
    assert "under its floor of 50%" in events[0].message
    samples = scrape(url)
    assert value(samples, "tollhouse_prompt_cache_floor_breached", route="floored") == 1
    assert value(samples, "tollhouse_alerts_total", kind="prompt_cache_floor") == 1
    # A route without a floor has no such series.
    assert not [
        s for s in samples["tollhouse_prompt_cache_floor_breached"] if s[0]["route"] == "support"
    ]


def watch(**route: Any) -> PromptCacheWatch:
    config = parse_config(
        {
            **IN_PROCESS_CONFIG,
            "models": {
                "r": {"deployments": [{"provider": "sim-anthropic", "model": SONNET}], **route}
            },
        }
    )
    return PromptCacheWatch(config, Alerts())


def observe(w: PromptCacheWatch, now: float = 0.0, **labels: Any) -> None:
    w.observe(
        now=now,
        **{"route": "r", "model": SONNET, "system_prompt": None, **labels},
        uncached=10,
        cache_write=0,
        cache_read=90,
    )


def test_a_client_cannot_grow_the_label_sets() -> None:
    w = watch()
    for n in range(100):
        observe(w, system_prompt=f"{n:016x}")
    observe(w, route="made-up-route", model="made-up-model")
    observe(w, system_prompt=None)
    prompts = {labels[2] for labels in w.tokens if labels[0] == "r"}
    assert len(prompts) == SYSTEM_PROMPTS_PER_ROUTE + 2  # the first 8, other, none
    assert {OTHER, NO_SYSTEM_PROMPT} <= prompts
    assert (OTHER, OTHER, NO_SYSTEM_PROMPT) in w.tokens
    assert sum(w.tokens[("r", SONNET, OTHER)]) == 100 * (100 - SYSTEM_PROMPTS_PER_ROUTE)


def test_the_floor_needs_enough_input_in_the_window_to_judge() -> None:
    rule = HitRatioFloorRule("r", 0.5, window_seconds=60, min_input_tokens=1000)
    assert rule.observe(0, 400, 0) is None
    assert rule.observe(1, 400, 0) is None  # 800 tokens: too few
    event = rule.observe(2, 400, 0)
    assert event is not None
    assert event.status == "firing"


def test_the_floor_resolves_after_a_whole_window_at_or_over_it() -> None:
    rule = HitRatioFloorRule("r", 0.5, window_seconds=60, min_input_tokens=100)
    first = rule.observe(0, 1000, 0)
    assert first is not None
    assert first.status == "firing"
    assert rule.observe(10, 1000, 100) is None  # still under: no second event
    assert rule.observe(70, 1000, 900) is None  # over the floor since 70...
    assert rule.observe(100, 1000, 900) is None
    resolved = rule.observe(131, 1000, 900)  # ...for a whole window
    assert resolved is not None
    assert resolved.status == "resolved"


def test_reads_over_the_floor_never_fire() -> None:
    rule = HitRatioFloorRule("r", 0.5, window_seconds=60, min_input_tokens=100)
    assert all(rule.observe(n, 1000, 600) is None for n in range(100))


def test_a_new_config_version_keeps_an_unchanged_floors_episode() -> None:
    floor = {"hit_ratio_floor": 0.5, "floor_min_input_tokens": 10}
    w = watch(prompt_cache=floor)
    w.observe(
        now=0,
        route="r",
        model=SONNET,
        system_prompt=None,
        uncached=100,
        cache_write=0,
        cache_read=0,
    )
    assert w.floors["r"].firing
    same = parse_config(
        {
            **IN_PROCESS_CONFIG,
            "models": {
                "r": {
                    "deployments": [{"provider": "sim-anthropic", "model": SONNET}],
                    "prompt_cache": floor,
                }
            },
        }
    )
    w.configure(same)
    assert w.floors["r"].firing
    w.configure(parse_config({**IN_PROCESS_CONFIG, "models": {}}))
    assert w.floors == {}
