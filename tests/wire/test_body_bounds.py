"""Bounds on a request body's shape (wire/body_bounds.py): exact at their limits, linear in
the body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.scaling import LINEAR_GROWTH_LIMIT, growth

from tollhouse.config.model import LimitsConfig
from tollhouse.errors import BadRequest, RequestTooLarge
from tollhouse.wire.body_bounds import nests_deeper, parse_bounded
from tollhouse.wire.openai import parse_chat_request

LIMITS = LimitsConfig(max_messages=3, max_json_containers=40, max_json_depth=8)


def nested(depth: int) -> dict[str, Any]:
    """A request whose `metadata` makes it `depth` objects deep in all."""
    value: dict[str, Any] = {}
    for _ in range(depth - 2):
        value = {"x": value}
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": value}


def parse(doc: dict[str, Any], limits: LimitsConfig = LIMITS) -> dict[str, Any]:
    return parse_bounded(orjson.dumps(doc), parse_chat_request, limits)


def test_nesting_as_deep_as_the_limit_is_accepted() -> None:
    assert parse(nested(8))["metadata"]


def test_one_level_deeper_than_the_limit_is_refused_naming_the_setting() -> None:
    with pytest.raises(BadRequest, match=r"more than 8 levels deep \(limits.max_json_depth\)"):
        parse(nested(9))


def test_as_many_messages_as_the_limit_are_accepted_one_more_refused() -> None:
    message = {"role": "user", "content": "hi"}
    assert len(parse({"model": "m", "messages": [message] * 3})["messages"]) == 3
    with pytest.raises(BadRequest, match=r"4 messages; the limit is 3 \(limits.max_messages\)"):
        parse({"model": "m", "messages": [message] * 4})


def test_too_many_containers_are_refused_413_before_parsing() -> None:
    # Not even JSON: the count alone refuses it, without a parse.
    raw = b"[" * 41
    with pytest.raises(RequestTooLarge, match=r"limits.max_json_containers"):
        parse_bounded(raw, parse_chat_request, LIMITS)


def test_brackets_inside_strings_count_toward_the_container_bound() -> None:
    doc = {"model": "m", "messages": [{"role": "user", "content": "{" * 40}]}
    with pytest.raises(RequestTooLarge):
        parse(doc)
    assert parse(doc, LimitsConfig())["messages"][0]["content"] == "{" * 40


def test_depth_of_lists_and_objects_counts_alike() -> None:
    assert not nests_deeper({"a": [[{"b": []}]]}, 5)
    assert nests_deeper({"a": [[{"b": [[]]}]]}, 5)


@pytest.mark.parametrize(
    "make",
    [
        lambda n: {"messages": [{"role": "user", "content": [{"type": "text"}]}] * n},
        lambda n: nested(n)["metadata"],
    ],
    ids=["wide", "deep"],
)
def test_the_depth_walk_takes_time_linear_in_the_containers(make: Any) -> None:
    assert growth(lambda doc: nests_deeper(doc, 10**6), make, 20_000) < LINEAR_GROWTH_LIMIT
