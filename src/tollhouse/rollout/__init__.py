"""Safe rollout around the path (DESIGN.md): a route's canaries watched against its control
and set back to 0 % when they fail (`monitor.py`, judged by `guardrails.py` over the
windows of `window.py` with the tests of `statistics.py`), their weights moved as new
config versions (`weights.py`), promoted step by step (`promotion.py`), and shown by
`tollhouse rollout status` (`status.py`)."""
