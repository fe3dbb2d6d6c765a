"""Route: alias → variant → deployments + policies (see router.py, variant_split.py); on a
route of candidates listed cheapest first, where a call starts (candidates.py)."""

from tollhouse.stages.route.router import RoutePlan, Router, Target

__all__ = ["RoutePlan", "Router", "Target"]
