"""A canary's weight moved in a config document: taken from or given back to the control,
the other canaries untouched, every refusal saying what to do."""

from __future__ import annotations

from typing import Any

import pytest

from tollhouse.errors import BadRequest, NotFound
from tollhouse.rollout.weights import with_weight

DOC: dict[str, Any] = {
    "models": {
        "support": {
            "deployments": [{"provider": "sim", "model": "m"}],
            "variants": {
                "control": {"weight": 89},
                "concise": {"weight": 1, "system": {"mode": "append", "text": "Brief."}},
                "sonnet": {"weight": 10, "model": "claude-sonnet-4-5"},
            },
        },
        "plain": {"deployments": [{"provider": "sim", "model": "m"}]},
    }
}


def weights(doc: dict[str, Any]) -> dict[str, Any]:
    return {n: v["weight"] for n, v in doc["models"]["support"]["variants"].items()}


def test_promoting_takes_the_weight_from_the_control_only() -> None:
    changed = with_weight(DOC, "support", "concise", 10)
    assert weights(changed) == {"control": 80, "concise": 10, "sonnet": 10}
    assert weights(DOC) == {"control": 89, "concise": 1, "sonnet": 10}  # not mutated


def test_rolling_back_gives_the_weight_back_to_the_control() -> None:
    assert weights(with_weight(DOC, "support", "sonnet", 0)) == {
        "control": 99,
        "concise": 1,
        "sonnet": 0,
    }


def test_the_rest_of_the_variant_is_kept() -> None:
    changed = with_weight(DOC, "support", "concise", 50)
    assert changed["models"]["support"]["variants"]["concise"]["system"] == {
        "mode": "append",
        "text": "Brief.",
    }


def test_a_weight_the_control_cannot_give_is_refused_with_the_most_it_can_go_to() -> None:
    with pytest.raises(BadRequest) as caught:
        with_weight(DOC, "support", "concise", 95)
    assert "can go to 90 % at most" in caught.value.message


@pytest.mark.parametrize(
    ("route", "variant", "weight", "error", "says"),
    [
        ("nope", "concise", 10, NotFound, "no route 'nope'"),
        ("plain", "concise", 10, BadRequest, "route 'plain' has no variants"),
        ("support", "nope", 10, NotFound, "its variants: control, concise, sonnet"),
        ("support", "control", 50, BadRequest, "is the control of route 'support'"),
        ("support", "concise", 10.555, BadRequest, "at most two decimals"),
        ("support", "concise", 101, BadRequest, "expected 0 to 100"),
    ],
)
def test_what_cannot_be_moved_is_refused_saying_why(
    route: str, variant: str, weight: float, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        with_weight(DOC, route, variant, weight)
    assert says in str(caught.value)
