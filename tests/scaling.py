"""How a function's time grows with its input: linear work on 4x the input takes about 4x as
long, quadratic work 16x. Measured in CPU time of the calling thread, so other work on a
loaded machine does not count, and compared within one run."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

# Linear is 4; n log n a little more; quadratic 16. Generous for timing noise.
LINEAR_GROWTH_LIMIT = 9.0
_REPEATS = 5


def growth(run: Callable[[Any], object], make: Callable[[int], Any], size: int) -> float:
    """CPU time of `run(make(4 * size))` over that of `run(make(size))`, each the fastest of
    a few runs."""
    small, large = make(size), make(4 * size)
    return _fastest(run, large) / _fastest(run, small)


def _fastest(run: Callable[[Any], object], value: Any) -> float:
    # The cyclic collector's full passes walk the whole heap, which the larger input makes
    # larger: timed with it, any allocating function looks super-linear.
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(_REPEATS):
            started = time.thread_time()
            run(value)
            best = min(best, time.thread_time() - started)
    finally:
        gc.enable()
    return max(best, 1e-6)
