"""The `when` rules of a route's candidates (stages/route/candidates.py), checked when the
config loads: a regular expression that compiles, a classifier that imports, at least one
condition, and none on the first deployment."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from tollhouse.config.model import CandidateRule, Deployment

Classifier = Callable[[str], object]


def rule_parts(rule: CandidateRule) -> tuple[re.Pattern[str] | None, Classifier | None]:
    """`rule`'s regular expression and classifier, compiled and imported; ValueError naming
    the condition (`when.last_user_matches: ...`) when its regular expression is wrong or
    its classifier can't be imported or called, or when it sets no condition at all."""
    if rule == CandidateRule():
        raise ValueError(
            "when: set at least one of input_tokens_above, last_user_matches, classifier, "
            "tool_present"
        )
    pattern = None
    if rule.last_user_matches is not None:
        try:
            pattern = re.compile(rule.last_user_matches)
        except re.error as exc:
            raise ValueError(
                f"when.last_user_matches: not a valid regular expression: {exc}"
            ) from None
    classifier = None
    if rule.classifier is not None:
        classifier = _import_classifier(rule.classifier)
    return pattern, classifier


def _import_classifier(path: str) -> Classifier:
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"when.classifier: expected module.path:function, got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"when.classifier: cannot import {module_name!r}: {exc}") from None
    found = getattr(module, name, None)
    if not callable(found):
        raise ValueError(f"when.classifier: {module_name!r} has no function {name!r}")
    classify: Classifier = found
    return classify


def check_candidates(deployments: tuple[Deployment, ...]) -> str | None:
    """What is wrong with the `when` rules of a route's `deployments` (a message starting
    with the key under `deployments`, e.g. `[1].when.classifier: ...`), or None."""
    for index, deployment in enumerate(deployments):
        if deployment.when is None:
            continue
        if index == 0:
            return (
                "[0].when: the first deployment is where calls start; a rule there chooses nothing"
            )
        try:
            rule_parts(deployment.when)
        except ValueError as exc:
            return f"[{index}].{exc}"
    return None
