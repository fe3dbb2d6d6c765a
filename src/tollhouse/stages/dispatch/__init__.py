"""Dispatch: get the call answered by one of its route's deployments.

Read in the order a call meets them:

- `fallback_chain`: the route's deployments in order, open breakers skipped; `degrade` when
  nothing is left.
- `escalation`: on a route of candidates listed cheapest first, a refused, cut or
  checked-out answer moves on to the next candidate as a failure does.
- `retry`: the attempts at one deployment, with backoff and the upstream's `retry-after`.
- `hedge`: a second deployment started when the first has not answered in time.
- `deadline`: the time by which the answer must have started (route and client timeouts).
- `attempt`: one try: the `upstream_request` sent, the answer classified, a stream's
  preamble held back so that a failure before any content is still retried unseen.
- `answer_reply`: the client's reply from an answer (after the answer checks, see
  `stages.check`) or from a client error the upstream gave.
- `stream_relay`: a started stream relayed chunk by chunk (`stream_markers` find the few
  events it reads).
- `degrade`: stale, static or a clean overload error when every deployment failed.
"""

from tollhouse.stages.dispatch.fallback_chain import dispatch

__all__ = ["dispatch"]
