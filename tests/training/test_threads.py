"""The thread governor (genlab.training.threads): fewer threads while other programs keep the cores busy, every
core again once they are free, and nothing at all when the count is pinned. Step times are fed in directly (the
benchmark benchmarks/contention.py measures the real thing)."""
from __future__ import annotations

import pytest
import torch

from genlab.recipe import build_networks, load_config
from genlab.training import threads as th
from genlab.training.perf import resolve_runtime


@pytest.fixture
def governor():
    before = torch.get_num_threads()
    said: list[str] = []
    g = th.ThreadGovernor(2, said.append)
    g.said = said
    torch.set_num_threads(2)
    yield g
    torch.set_num_threads(before)


def feed(g: th.ThreadGovernor, speed: dict[int, float], seconds: float, start: float = 0.0) -> float:
    """Steps for ``seconds`` of clock, each taking ``speed[threads now]``; returns the clock at the end."""
    now = start
    while now < start + seconds:
        now += speed[g.threads]
        g.step_time(speed[g.threads], now)
    return now


IDLE = {2: 0.030, 1: 0.045}  # two threads 1.5x faster than one
BUSY = {2: 0.900, 1: 0.050}  # one core taken: two threads collapse, one barely slows


def test_an_idle_machine_keeps_every_core(governor):
    feed(governor, IDLE, 300.0)
    assert governor.threads == 2 and torch.get_num_threads() == 2 and governor.said == []


def test_a_busy_core_is_left_and_taken_back_once_free(governor):
    now = feed(governor, IDLE, 60.0)
    now = feed(governor, BUSY, 20.0, now)
    assert governor.threads == 1 and torch.get_num_threads() == 1
    assert "other programs are using the cores" in governor.said[0]
    steps_at_two = []
    g_set = governor._set

    def spy(threads, why):
        steps_at_two.append(threads)
        g_set(threads, why)

    governor._set = spy
    now = feed(governor, BUSY, 120.0, now)  # probes of 2 threads end at their first slow step
    assert governor.threads == 1 and steps_at_two.count(2) >= 3
    feed(governor, IDLE, 60.0, now)
    assert governor.threads == 2 and "free again" in governor.said[-1]


def test_a_machine_that_is_slower_at_every_count_keeps_every_core(governor):
    """A noisy virtual machine (or a hot CPU) slows steps at any thread count: the slow median starts a probe of
    fewer threads, which is slower still, so the count stays and the slower median becomes its reference. The
    governor used to drop to one thread for PROBE_SECONDS on such noise."""
    noisy = {2: 0.060, 1: 0.090}  # both counts 2x slower; two threads still the faster
    at: list[int] = []
    now = feed(governor, IDLE, 60.0)
    end = now + 60.0
    while now < end:
        now += noisy[governor.threads]
        at.append(governor.threads)
        governor.step_time(noisy[governor.threads], now)
    feed(governor, IDLE, 60.0, now)
    assert governor.said == [] and governor.threads == 2
    assert at.count(1) / len(at) < 0.05, f"{at.count(1)} of {len(at)} noisy steps ran on one thread"


def test_a_run_that_starts_on_a_busy_machine_finds_one_thread(governor):
    feed(governor, BUSY, 40.0)  # its best at 2 threads is already the slow one: a probe finds 1 faster
    assert governor.threads == 1 and "fewer threads are faster" in governor.said[0]


def test_the_change_goes_into_the_next_record(governor):
    feed(governor, IDLE, 60.0)
    feed(governor, BUSY, 20.0, 60.0)
    record = {"step": 10, "time/images_per_s": 71.0}
    governor.on_record(None, record)
    assert record["threads"] == 1 and "2 -> 1 threads" in record["threads_changed"]
    again = {"step": 20, "time/images_per_s": 1300.0}
    governor.on_record(None, again)
    assert again["threads"] == 1 and "threads_changed" not in again
    evaluation = {"step": 20, "fid": 3.0}
    governor.on_record(None, evaluation)
    assert "threads" not in evaluation


@pytest.mark.parametrize("threads, env, adaptive", [("0", None, True), ("2", None, False), ("0", "2", False)])
def test_only_an_automatic_cpu_count_adapts(monkeypatch, threads, env, adaptive):
    monkeypatch.setattr("genlab.training.perf.cpu_cores", lambda: 4)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    cfg = load_config(None, ["model.name=dcgan", f"train.threads={threads}", "train.device=cpu"])
    rt = resolve_runtime(cfg.train, torch.device("cpu"), build_networks(cfg))
    assert rt.adaptive_threads is adaptive


@pytest.mark.parametrize("env, cores, torch_threads, expected", [
    (None, 2, 2, 2), ("2", 2, 2, 0), (None, 1, 1, 0), (None, 4, 3, 0)])
def test_evaluation_adapts_only_an_unpinned_count_of_several_cores(monkeypatch, env, cores, torch_threads, expected):
    from genlab import threads
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        assert threads.adaptive("cpu") == expected
        assert threads.adaptive("cuda") == 0
    finally:
        torch.set_num_threads(before)


def test_sampling_for_evaluation_leaves_a_busy_core_and_restores_the_count(monkeypatch):
    """Batches are slow at 2 threads and fast at 1 (a core taken): the evaluation drops to one thread while it
    draws, and leaves the process at its count when it ends."""
    import time

    from genlab import threads
    from genlab.metrics import FeatureExtractor
    from genlab.metrics.evaluate import sample_features

    monkeypatch.setattr(threads, "adaptive", lambda device="cpu": 2)
    seen: list[int] = []

    def sample(n):
        seen.append(torch.get_num_threads())
        time.sleep(0.03 if torch.get_num_threads() == 2 else 0.002)
        return torch.rand(n, 1, 8, 8) * 2 - 1

    class Flat(torch.nn.Module):
        def forward(self, x):
            f = x.flatten(1)
            return f, f[:, :2]

    ext = FeatureExtractor(Flat(), name="flat", hash="flat", feature_dim=64, num_classes=2, resolution=8,
                           channels=1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sample_features(sample, 40 * 4, ext, batch_size=4)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert seen[:8] == [2] * 8 and seen.count(1) > len(seen) // 2


def test_slow_first_steps_are_not_taken_for_contention(governor):
    """The first steps of a run (allocations, kernel choice) are slow at any count: a probe measured after them
    must not find one thread 'faster' than a median that contains them."""
    from genlab.threads import WARMUP
    for i in range(WARMUP):
        governor.step_time(0.2, 0.2 * (i + 1))  # 4x-7x slower than the steady state
    feed(governor, IDLE, 120.0, 2.0)
    assert governor.threads == 2 and governor.said == []
