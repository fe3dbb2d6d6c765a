"""Route: alias → variant → deployments + policies (see router.py, variant_split.py)."""

from tollhouse.stages.route.router import RoutePlan, Router, Target

__all__ = ["RoutePlan", "Router", "Target"]
