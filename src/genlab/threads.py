"""CPU threads that do not collapse when the machine is shared (training, sampling and evaluation use it).

On a 2-core machine with another program keeping one core busy, two PyTorch threads train 30x slower than one:
each parallel region waits for the thread that is not scheduled (docs/benchmarks.md). Users' laptops and shared
servers are never idle, so with ``train.threads=auto`` on the CPU a run watches its own step time (``genlab eval``
its batch time) and uses the thread count that is fastest *now*:

- it keeps the median of the last few step times at the current count (after the first ``WARMUP`` steps, which
  are slow at any count), and the best such median it has seen;
- when the median stays above ``SLOWER`` x the best, it tries half the thread count for a few steps at once and
  keeps it when those steps are at least ``GAIN`` faster (other programs took cores); when they are not, the
  whole machine is slower (a noisy virtual machine, a hot CPU) and more threads still win: the count stays and
  the slower median becomes its reference, so noise costs a few probe steps, not ``PROBE_SECONDS`` at one thread;
- as soon as it has a median, and then every ``PROBE_SECONDS``, it tries another count for a few steps (half the
  current one, or twice it when below the full count; the larger first once the cores were taken) and keeps it
  when those steps are at least ``GAIN`` faster: a run that started on a busy machine finds its count, and one
  whose neighbour ended goes back to every core. A probe step that is far slower ends the probe at once.

Each change is one line in the log and goes into the next record (``threads``). Thread counts can change the
rounding of some CPU kernels, so a run whose count changed is not bit-identical to one whose count did not; for
bit-exact reruns pin the count (``train.threads=N`` or ``OMP_NUM_THREADS``), which turns this off.
"""
from __future__ import annotations

import os
import statistics
import time
from collections import deque
from collections.abc import Callable

import torch

#: steps in the median that describes the current speed
WINDOW = 8
#: first steps left out (allocations, kernel selection, caches: slower than the steady state at any count)
WARMUP = 10
#: a median this many times the best one at the same count means other programs took cores
SLOWER = 1.8
#: a probe must make steps at least this much faster to be kept
GAIN = 1.1
#: seconds between probes of a larger thread count
PROBE_SECONDS = 30.0
#: steps of a probe (it ends at once when a step takes PROBE_ABORT x the current median)
PROBE_STEPS = 6
PROBE_ABORT = 2.0


def adaptive(device: str = "cpu") -> int:
    """The thread count a :class:`Governor` may adapt on ``device``, or 0 when it must not: it adapts on the CPU
    only, when nothing pinned the count (``OMP_NUM_THREADS`` unset, torch at its default of every usable core)
    and there is more than one core."""
    if device != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return 0
    cores = usable_cores()
    return cores if cores > 1 and torch.get_num_threads() == cores else 0


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Governor:
    """Adapts ``torch.set_num_threads`` to the cores that are free (see the module docstring): call
    :meth:`tick` after each step (or :meth:`step_time` with a measured time)."""

    def __init__(self, full: int, log: Callable[[str], object] = print) -> None:
        self.full, self.log = int(full), log
        self.threads = self.full
        self.times: deque[float] = deque(maxlen=WINDOW)
        self.best: dict[int, float] = {}  # thread count -> the best median step time seen at it
        self.last: float | None = None
        self.probe: tuple[int, list[float]] | None = None  # (the count we came from, the probe's step times)
        self.next_probe = 0.0  # the first probe comes as soon as there is a median
        self.probed_down = False  # the last probe tried fewer threads (the next one tries more)
        self.slowed = 0.0  # the probe under way was started by steps this many times slower than their best
        self.changes: list[str] = []  # since the last record
        self.warmup = WARMUP

    def tick(self) -> None:
        """One step ended now (the first call only starts the clock)."""
        now = time.perf_counter()
        last, self.last = self.last, now
        if last is not None:
            self.step_time(now - last, now)

    # ------------------------------------------------------------------------------------- the decision
    def step_time(self, seconds: float, now: float) -> None:
        """One step took ``seconds`` at the current count (``now``: the clock when it ended)."""
        if self.warmup > 0:
            self.warmup -= 1
            return
        if self.probe is not None:
            self._probe_step(seconds, now)
            return
        self.times.append(seconds)
        if len(self.times) < WINDOW:
            return
        median = statistics.median(self.times)
        best = self.best.get(self.threads)
        if best is None or median < best:
            self.best[self.threads] = best = median
        if self.threads > 1 and median > SLOWER * best:  # cores taken, or the whole machine slower: measure
            self._start_probe(max(1, self.threads // 2), slowed=median / best)
        elif now >= self.next_probe and self.full > 1:
            up = self.threads < self.full and (self.threads == 1 or self.probed_down)
            self._start_probe(min(self.full, self.threads * 2) if up else max(1, self.threads // 2))

    def _start_probe(self, threads: int, slowed: float = 0.0) -> None:
        self.probed_down, self.slowed = threads < self.threads, slowed
        self.probe = (self.threads, [])
        self._set(threads, None)

    def _probe_step(self, seconds: float, now: float) -> None:
        came_from, times = self.probe  # type: ignore[misc]
        current = statistics.median(self.times)
        times.append(seconds)
        if seconds > PROBE_ABORT * current or len(times) >= PROBE_STEPS:
            self.probe = None
            faster = len(times) > 2 and statistics.median(times[1:]) * GAIN < current
            if faster:
                self.best[self.threads] = statistics.median(times[1:])
                why = ("the cores are free again" if self.threads > came_from else
                       f"steps took {self.slowed:.1f}x their best at {came_from} threads and {_threads(self.threads)} "
                       "faster (other programs are using the cores)" if self.slowed else
                       "fewer threads are faster now")
                self.changes.append(f"{came_from} -> {self.threads} threads: {why}")
                self.log(f"threads {came_from} -> {self.threads}: {why}")
                self.times.clear()
            else:
                self._set(came_from, None)
                if self.slowed:  # the machine is slower, this count still the fastest: the new reference
                    self.best[came_from] = current
                    self.times.clear()
            self.next_probe = now + PROBE_SECONDS

    def _set(self, threads: int, why: str | None) -> None:
        if why is not None:
            self.changes.append(f"{self.threads} -> {threads} threads: {why}")
            self.log(f"threads {self.threads} -> {threads}: {why}")
        self.threads = threads
        torch.set_num_threads(threads)
        if why is not None:
            self.times.clear()


def _threads(n: int) -> str:
    return "1 thread is" if n == 1 else f"{n} threads are"
