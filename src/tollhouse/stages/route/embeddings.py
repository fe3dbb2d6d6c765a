"""The deployments of a route that can answer `POST /v1/embeddings`."""

from __future__ import annotations

from dataclasses import replace

from tollhouse.errors import BadRequest
from tollhouse.stages.route.router import RoutePlan
from tollhouse.wire.formats import FORMATS


def embeddings_plan(plan: RoutePlan) -> RoutePlan:
    """`plan` with only the deployments whose wire format has an embeddings endpoint
    (OpenAI's and OpenAI-compatible servers'); `BadRequest` naming the model when none has,
    since Messages has no embeddings to translate to."""
    targets = tuple(
        t for t in plan.targets if "embeddings" in FORMATS[t.provider.wire_format].upstream_paths
    )
    if not targets:
        raise BadRequest(
            f"model: {plan.model!r} is served by Anthropic-format upstreams, which have no "
            "embeddings endpoint; route it to an OpenAI-format provider",
            param="model",
        )
    return plan if len(targets) == len(plan.targets) else replace(plan, targets=targets)
