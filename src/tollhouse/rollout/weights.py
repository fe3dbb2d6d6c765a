"""A route's weights changed in a config document, the way a rollout moves them: the
variant's new weight is taken from (or given back to) the control, so the weights still
sum to 100 and the other canaries keep theirs.

Pure functions over the document as written (config/document.py); the caller stores the
result as a new config version. Every refusal is a `BadRequest` saying what to do.
"""

from __future__ import annotations

import copy
from typing import Any

from tollhouse.errors import BadRequest, NotFound

Document = dict[str, Any]


def variants_of(document: Document, route: str) -> tuple[str, dict[str, Any]]:
    """The control's name and the variants of `route` in `document`."""
    entry = (document.get("models") or {}).get(route)
    if not isinstance(entry, dict):
        raise NotFound(f"no route {route!r} in the config")
    variants = entry.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise BadRequest(f"route {route!r} has no variants")
    control = entry.get("control", "control")
    return str(control), variants


def weight_of(variants: dict[str, Any], name: str, route: str) -> float:
    variant = variants.get(name)
    if not isinstance(variant, dict):
        known = ", ".join(variants)
        raise NotFound(f"route {route!r} has no variant {name!r}; its variants: {known}")
    weight = variant.get("weight")
    if not isinstance(weight, int | float) or isinstance(weight, bool):
        raise BadRequest(
            f"models.{route}.variants.{name}.weight is {weight!r}, not a number: change it "
            "where it is set"
        )
    return float(weight)


def with_weight(document: Document, route: str, variant: str, weight: float) -> Document:
    """`document` with `variant` of `route` at `weight` percent and the control holding
    what the variants leave."""
    control, variants = variants_of(document, route)
    if variant == control:
        raise BadRequest(
            f"{variant!r} is the control of route {route!r}: it holds what the other "
            "variants leave; promote or roll back one of them"
        )
    if not 0 <= weight <= 100 or round(weight * 100) != weight * 100:
        raise BadRequest(f"weight: expected 0 to 100 with at most two decimals, got {weight:g}")
    current = weight_of(variants, variant, route)
    control_weight = weight_of(variants, control, route)
    left = round((control_weight + current - weight) * 100) / 100
    if left < 0:
        raise BadRequest(
            f"the control of route {route!r} has {control_weight:g} % to give; {variant!r} "
            f"can go to {control_weight + current:g} % at most"
        )
    changed = copy.deepcopy(document)
    moved = changed["models"][route]["variants"]
    moved[variant]["weight"] = _number(weight)
    moved[control]["weight"] = _number(left)
    return changed


def _number(value: float) -> int | float:
    """A weight as the author would write it: 10, not 10.0."""
    return int(value) if value == int(value) else value
