"""Injectable faults: what can go wrong between a client and a provider, on demand.

Grammar of a fault spec (the value of the `x-simulator-fault` request header, or the `fault`
of a config rule):

    <status>[:<retry_after_s>]    answer with this HTTP status (400-599) and the wire
                                  format's own error body; e.g. 429, 500, 503, 529 (Anthropic
                                  `overloaded_error`). 429 carries `retry-after` (seconds,
                                  default 1) and `retry-after-ms`; other statuses only when
                                  `:<retry_after_s>` is given.
    slow-first-byte:<ms>          wait <ms> before the status line, then answer normally.
    hang                          never answer (sleeps until the caller gives up / cancels).
    reset                         drop the connection before any response: in process,
                                  `Simulator.handle` raises `UpstreamConnectionError`; over
                                  HTTP the socket closes with no status line.
    mid-stream-error[:<n>]        a stream starts normally, then after <n> events (default 4)
                                  comes the format's error event (Anthropic `event: error`
                                  with an `overloaded_error`, OpenAI `data: {"error": ...}`)
                                  and the stream ends. Non-streaming: 529 `overloaded_error`
                                  (Anthropic) / 500 `server_error` (OpenAI).
    mid-stream-reset[:<n>]        a stream starts normally, then after <n> events (default 4)
                                  the connection breaks without a clean end
                                  (`UpstreamConnectionError` from `iter_chunks`/`read`).
                                  Non-streaming: the headers arrive, the body never does.

A stream shorter than <n> events breaks just before its last event, so a mid-stream fault
always fires. The header applies to any path and takes precedence; config rules apply to
generation calls (`/v1/messages`, `/v1/chat/completions`, ...) and moderations only, by
model glob, optionally to the first N matching calls (`first_n`, counted per rule) or at
random (`probability`, from an RNG seeded by the config's seed so a run is reproducible).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tollhouse.simulator.config import FaultRule

FaultKind = Literal[
    "status", "slow-first-byte", "hang", "reset", "mid-stream-error", "mid-stream-reset"
]
DEFAULT_AFTER_EVENTS = 4
DEFAULT_RETRY_AFTER_S = 1.0

_GRAMMAR = (
    "expected <status 400-599>[:<retry_after_s>], slow-first-byte:<ms>, hang, reset, "
    "mid-stream-error[:<events>] or mid-stream-reset[:<events>]"
)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int = 0
    retry_after_s: float | None = None
    delay_ms: float = 0.0
    after_events: int = DEFAULT_AFTER_EVENTS

    @property
    def is_mid_stream(self) -> bool:
        return self.kind in ("mid-stream-error", "mid-stream-reset")


def parse_fault(spec: str) -> Fault:
    """The `Fault` a spec names; ValueError saying what is expected otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"not a fault spec: {spec!r}; {_GRAMMAR}")
    name, sep, arg = spec.strip().lower().partition(":")
    if name.isdigit():
        status = int(name)
        if not 400 <= status <= 599:
            raise ValueError(f"status {status} is not an error status; {_GRAMMAR}")
        retry = _number(arg, spec) if sep else (DEFAULT_RETRY_AFTER_S if status == 429 else None)
        return Fault("status", status=status, retry_after_s=retry)
    if name == "slow-first-byte" and sep:
        return Fault("slow-first-byte", delay_ms=_number(arg, spec))
    if name == "hang" and not sep:
        return Fault("hang")
    if name == "reset" and not sep:
        return Fault("reset")
    if name in ("mid-stream-error", "mid-stream-reset"):
        if sep and not arg.isdigit():
            raise ValueError(f"{spec!r}: the event count must be an integer >= 0")
        after = int(arg) if sep else DEFAULT_AFTER_EVENTS
        kind: FaultKind = "mid-stream-error" if name == "mid-stream-error" else "mid-stream-reset"
        return Fault(kind, after_events=after)
    raise ValueError(f"unknown fault {spec!r}; {_GRAMMAR}")


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError(f"{spec!r}: expected a number >= 0 after the colon")
    return value


class FaultSchedule:
    """Decides which fault, if any, a call gets. Thread-safe: rule counters and the RNG
    are shared by all calls of one simulator."""

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self._rules = tuple(rules)
        self._fired = [0] * len(self._rules)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def fired(self) -> dict[str, int]:
        """How often each config rule fired, by its fault spec (for tests and diagnostics)."""
        with self._lock:
            counts: dict[str, int] = {}
            for rule, fired in zip(self._rules, self._fired, strict=True):
                counts[rule.fault] = counts.get(rule.fault, 0) + fired
            return counts

    def pick(self, header: str | None, model: str | None, generation: bool) -> Fault | None:
        """The header's fault, else the first config rule that fires for this call.
        Raises ValueError for an unparseable header."""
        if header:
            return parse_fault(header)
        if not generation or not self._rules:
            return None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.model is not None and (
                    model is None or not fnmatch.fnmatchcase(model, rule.model)
                ):
                    continue
                if rule.first_n is not None and self._fired[i] >= rule.first_n:
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                self._fired[i] += 1
                return rule.parsed
        return None
