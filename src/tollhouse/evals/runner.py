"""Every case of a suite on every target, `repeat` times, at most `concurrency` at once.

A target is what one column of a comparison runs: the suite's route with a variant asked
for by header (`--variant`), or another model (`--model`). Each case run is one call
through the SDK of the suite's format and, for each `judge` check, one call to its judge;
then the figures of all those calls are read from the ledger (costs.py) and every check is
evaluated (checks.py). `GatewayUnreachable` or `LedgerMissing` stop the run (exit code 2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tollhouse.evals.checks import CheckResult, Observed, evaluate
from tollhouse.evals.clients import VARIANT_HEADER, Answer, GatewayClients, Request
from tollhouse.evals.costs import FigureSource, call_figures
from tollhouse.evals.judge import judge_request, read_verdict
from tollhouse.evals.progress import Progress
from tollhouse.evals.suite import Case, JudgeSpec, Suite

NO_LEDGER = "no ledger to read costs from (--config, --sqlite, --postgres or --admin-token)"


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    model: str
    variant: str | None = None


@dataclass(slots=True)
class CaseRun:
    target: Target
    case: Case
    repeat: int
    answer: Answer
    judged: dict[int, Answer] = field(default_factory=dict)
    """The judge's reply per index of a `judge` check in `case.checks`."""
    results: list[CheckResult] = field(default_factory=list)
    cost_usd: Decimal | None = None
    judge_cost_usd: Decimal = Decimal(0)

    @property
    def passed(self) -> bool:
        return self.answer.error is None and all(result.passed for result in self.results)


def judge_failures(runs: Sequence[CaseRun]) -> list[str]:
    """One line per judge call that failed (an infrastructure error, not a grade)."""
    return [
        f"the judge of case {run.case.id} on {run.target.label} failed: {answer.error}"
        for run in runs
        for answer in run.judged.values()
        if answer.error is not None
    ]


def targets_for(suite: Suite, models: Sequence[str], variants: Sequence[str]) -> list[Target]:
    """The targets `--model` and `--variant` name (a variant is of the suite's model); the
    suite's own model alone when neither is given. Raises ValueError when there is no
    model to call."""
    if variants and suite.model is None:
        raise ValueError("--variant needs the suite's `model` (the route the variants are of)")
    targets = [Target(label=model, model=model) for model in models]
    targets += [Target(label=name, model=str(suite.model), variant=name) for name in variants]
    if not targets:
        if suite.model is None:
            raise ValueError("the suite names no model: set `model` in it or pass --model")
        targets = [Target(label=suite.model, model=suite.model)]
    labels = [target.label for target in targets]
    if len(set(labels)) < len(labels):
        raise ValueError(f"a target is named twice: {labels}")
    return targets


async def run_suite(
    suite: Suite,
    targets: Sequence[Target],
    clients: GatewayClients,
    *,
    concurrency: int = 4,
    repeat: int = 1,
    progress: Progress | None = None,
) -> list[CaseRun]:
    """The case runs, in target, repeat, case order; their checks not yet evaluated
    (`settle` does that once the ledger has the calls' costs)."""
    plan = [
        (target, round_, case)
        for target in targets
        for round_ in range(repeat)
        for case in suite.cases
    ]
    gate = asyncio.Semaphore(concurrency)

    async def one(target: Target, round_: int, case: Case) -> CaseRun:
        async with gate:
            run = await _run_case(suite, clients, target, round_, case)
        if progress is not None:
            progress.advance(error=run.answer.error is not None)
        return run

    tasks: list[asyncio.Task[CaseRun]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(*step)) for step in plan]
    except* Exception as failures:
        raise failures.exceptions[0] from None
    finally:
        if progress is not None:
            progress.close()
    return [task.result() for task in tasks]


async def _run_case(
    suite: Suite, clients: GatewayClients, target: Target, round_: int, case: Case
) -> CaseRun:
    headers = {VARIANT_HEADER: target.variant} if target.variant else {}
    request = Request(
        model=target.model,
        messages=case.messages,
        system=case.system,
        tools=case.tools,
        parameters=case.parameters,
        headers=headers,
    )
    answer = await clients.send(suite.api, request)
    if target.variant and answer.error is None and answer.variant != target.variant:
        # A comparison of variants means nothing if the gateway served another one.
        served = answer.variant or "none named"
        answer.error = f"asked for variant {target.variant!r}, served by {served}"
    run = CaseRun(target=target, case=case, repeat=round_, answer=answer)
    if answer.error is None:
        for index, check in enumerate(case.checks):
            if check.kind == "judge":
                spec: JudgeSpec = check.value
                run.judged[index] = await clients.send(spec.api, judge_request(spec, case, answer))
    return run


async def settle(
    runs: Sequence[CaseRun], ledger: FigureSource | None, *, wait_seconds: float
) -> None:
    """Read every call's cost from `ledger` (None: costs unknown) and evaluate the checks."""
    ids = [
        answer.request_id
        for run in runs
        for answer in (run.answer, *run.judged.values())
        if answer.request_id is not None
    ]
    figures = (
        await call_figures(ledger, ids, wait_seconds=wait_seconds) if ledger is not None else {}
    )
    for run in runs:
        note = NO_LEDGER if ledger is None else "the model has no price in the catalog"
        found = figures.get(run.answer.request_id or "")
        run.cost_usd = found.cost_usd if found else None
        for reply in run.judged.values():
            judge_figures = figures.get(reply.request_id or "")
            if judge_figures is not None and judge_figures.cost_usd is not None:
                run.judge_cost_usd += judge_figures.cost_usd
        run.results = [
            evaluate(
                check,
                Observed(
                    answer=run.answer,
                    cost_usd=run.cost_usd,
                    cost_note=note,
                    verdict=read_verdict(run.judged[index]) if index in run.judged else None,
                ),
            )
            for index, check in enumerate(run.case.checks)
        ]
