"""Check: the output policies an answer passes before it reaches the client, in order.

Each policy is one module with one function `(call, plan, checked_again) -> bool`, run on a
whole answer once its stop reason and usage are on the call: it passes the answer (False),
refuses it by raising a `TollhouseError` in the client's format, or changes the request and
asks for one more attempt (True; `checked_again` says a check already did on this call).
Adding a policy is adding its module and one line to `ANSWER_CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable

from tollhouse.call import Call
from tollhouse.stages.check.truncation import check_truncation
from tollhouse.stages.route import RoutePlan

AnswerCheck = Callable[[Call, RoutePlan, bool], bool]

ANSWER_CHECKS: tuple[AnswerCheck, ...] = (check_truncation,)


def check_answer(call: Call, plan: RoutePlan, checked_again: bool) -> bool:
    """Run every answer check in order; True when one wants one more attempt."""
    return any(check(call, plan, checked_again) for check in ANSWER_CHECKS)
