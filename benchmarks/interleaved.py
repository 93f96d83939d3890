"""Timing shared by the layer benchmarks (dropout.py, joined_conv.py): two or more ways of doing the same work,
timed in alternating order in one run, the best block of each kept (these machines are noisy: read the ratio)."""
from __future__ import annotations

import time
from collections.abc import Callable


def best_ms(calls: dict[str, Callable[[], object]], repeats: int, iters: int, warmup: bool = False) -> dict[str, float]:
    """Milliseconds per call of each of ``calls``: the best of ``repeats`` blocks of ``iters`` calls, the order of
    the ways reversed every other block; ``warmup``: one more first block that is not kept (oneDNN's kernels)."""
    best = {k: float("inf") for k in calls}
    for r in range(repeats + warmup):
        for k in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t0 = time.perf_counter()
            for _ in range(iters):
                calls[k]()
            if r >= warmup:
                best[k] = min(best[k], (time.perf_counter() - t0) / iters * 1e3)
    return best
