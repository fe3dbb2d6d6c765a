"""Check: the output policies an answer passes before it reaches the client, in order.

Each policy is one module with one function `(call, plan, answer, checked_again) -> bool`,
run on a whole answer (`answer`, in the client's format, parsed on first use) once its stop
reason and usage are on the call: it passes the answer (False), refuses it by raising a
`TollhouseError` in the client's format, or changes the request and asks for one more
attempt (True; `checked_again` says a check already did on this call). Adding a policy is
adding its module and one line to `ANSWER_CHECKS`. Streams are checked as they are relayed
(`truncation.refuse_truncated_stream`, `structured_stream.validate_stream_at_end`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from tollhouse.call import Call
from tollhouse.stages.check.structured_output import check_structured_output
from tollhouse.stages.check.truncation import check_truncation

if TYPE_CHECKING:
    from tollhouse.stages.route import RoutePlan


class WholeAnswer:
    """A whole answer in the client's format: its bytes, and the document parsed from them
    the first time a check asks (most calls have no check that reads it)."""

    __slots__ = ("_doc", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._doc: dict[str, Any] | None = None

    @property
    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            try:
                doc = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                doc = None
            self._doc = doc if isinstance(doc, dict) else {}
        return self._doc


AnswerCheck = Callable[[Call, "RoutePlan", WholeAnswer, bool], bool]


def _structured_output(call: Call, plan: RoutePlan, answer: WholeAnswer, again: bool) -> bool:
    if plan.structured_output is None:
        return False
    return check_structured_output(call, plan.structured_output, answer.doc, again)


ANSWER_CHECKS: tuple[AnswerCheck, ...] = (check_truncation, _structured_output)


def check_answer(call: Call, plan: RoutePlan, answer: WholeAnswer, checked_again: bool) -> bool:
    """Run every answer check in order; True when one wants one more attempt."""
    return any(check(call, plan, answer, checked_again) for check in ANSWER_CHECKS)
