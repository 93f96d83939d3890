"""evaluate(collective=...): two fake ranks (threads of this process) give the numbers one process gives."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import GenlabError
from genlab.metrics import SINGLE_PROCESS, Collective, EvalOptions, evaluate
from genlab.metrics.collective import shard

from .conftest import make_random_extractor
from .test_evaluate import sampler_from

FAST = EvalOptions(kid_subsets=10, kid_subset_size=100, is_splits=4)


@dataclass
class ThreadWorld:
    """What the fake ranks share: a barrier (with a timeout, so a failing rank cannot hang the test) and slots."""

    size: int
    barrier: threading.Barrier = field(init=False)
    slots: list = field(init=False)
    main_first_calls: list = field(default_factory=list)  # (rank, event) in the order they happened

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.size, timeout=120)
        self.slots = [None] * self.size


@dataclass
class ThreadRank:
    """A ``Collective`` for one thread: gather concatenates every rank's rows in rank order."""

    world: ThreadWorld
    rank: int

    @property
    def world_size(self) -> int:
        return self.world.size

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        self.world.slots[self.rank] = rows
        self.world.barrier.wait()
        out = torch.cat(self.world.slots)
        self.world.barrier.wait()  # no rank refills a slot before all have read it
        return out

    def main_first(self, fn: Callable[[], Any]) -> Any:
        if self.rank == 0:
            got = fn()
            self.world.main_first_calls.append((0, "done"))
        self.world.barrier.wait()
        if self.rank != 0:
            self.world.main_first_calls.append((self.rank, "start"))
            got = fn()
        return got


def run_ranks(size: int, job: Callable[[Collective], dict]) -> tuple[list[dict], ThreadWorld]:
    """``job(collective)`` on ``size`` fake ranks at once; every rank's result, or the first rank's error."""
    world = ThreadWorld(size)
    results: list[Any] = [None] * size

    def worker(rank: int) -> None:
        torch.set_num_threads(1)
        try:
            results[rank] = job(ThreadRank(world, rank))
        except BaseException as e:  # handed to the test thread below
            results[rank] = e
            world.barrier.abort()

    threads = [threading.Thread(target=worker, args=(r,)) for r in range(size)]
    with torch.random.fork_rng(devices=[]):  # the ranks seed the process-wide RNG concurrently
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, threading.BrokenBarrierError):
            raise r
    return results, world


def values(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "protocol"}


@pytest.fixture
def images():
    from .conftest import blob_images

    return blob_images(256, seed=2)


@pytest.fixture
def reference(real_images):
    return ImageData(images=real_images[:300], name="blobs", split="train")


def test_two_ranks_give_the_numbers_of_one_process(images, reference):
    """Each rank samples its contiguous shard; with the same images in the same batches, gathering the two
    shards' features gives exactly what one process computes over all of them, on both ranks."""
    n = len(images)
    one = evaluate(sampler_from(images), n, reference, make_random_extractor(), batch_size=64, options=FAST)

    def job(collective: Collective) -> dict:
        start, count = shard(n, collective.rank, collective.world_size)
        return evaluate(sampler_from(images[start:start + count]), n, reference, make_random_extractor(),
                        batch_size=64, options=FAST, collective=collective)

    (rank0, rank1), world = run_ranks(2, job)
    assert values(rank0) == values(rank1) == values(one)
    assert set(values(one)) == {"fid", "kid", "is", "pr", "coverage", "fid_inf", "ci95"}
    assert sum(rank0["coverage"]["histogram"]) == n
    for r in (rank0, rank1):
        assert r["protocol"]["world_size"] == 2 and r["protocol"]["num_generated"] == n
    assert one["protocol"]["world_size"] == 1
    # the extractor, then the reference statistics: each made by rank 0 before rank 1 starts on it
    assert world.main_first_calls == [(0, "done"), (1, "start")] * 2


def test_uneven_shards_count_every_sample(images, reference):
    n = 101  # 51 + 50 rows
    one = evaluate(sampler_from(images), n, reference, make_random_extractor(), metrics="fid,coverage",
                   batch_size=64, options=FAST)

    def job(collective: Collective) -> dict:
        start, count = shard(n, collective.rank, collective.world_size)
        return evaluate(sampler_from(images[start:start + count]), n, reference, make_random_extractor(),
                        metrics="fid,coverage", batch_size=64, options=FAST, collective=collective)

    (rank0, rank1), _ = run_ranks(2, job)
    assert values(rank0) == values(rank1)
    assert rank0["protocol"]["num_generated"] == n
    assert rank0["coverage"]["histogram"] == one["coverage"]["histogram"]
    assert rank0["fid"] == pytest.approx(one["fid"], rel=1e-6)  # other batch sizes: float32 rounding only


def test_too_few_samples_for_the_ranks_fail_on_every_rank_before_any_collective(reference):
    for rank in (0, 1):
        never = ThreadRank(ThreadWorld(2), rank)  # a gather here would wait for the other rank forever
        with pytest.raises(GenlabError, match="2 processes needs at least 2 samples each, got 3"):
            evaluate(sampler_from(torch.zeros(3, 1, 16, 16, dtype=torch.uint8)), 3, reference,
                     make_random_extractor(), collective=never)


def test_single_process_is_the_identity():
    x = torch.randn(3, 2)
    assert SINGLE_PROCESS.gather(x) is x and SINGLE_PROCESS.main_first(lambda: 7) == 7
    assert (SINGLE_PROCESS.rank, SINGLE_PROCESS.world_size) == (0, 1)


def test_shards_cover_everything_once():
    for n in (0, 1, 7, 10):
        for world in (1, 2, 3):
            parts = [shard(n, r, world) for r in range(world)]
            assert [i for start, count in parts for i in range(start, start + count)] == list(range(n))
            assert max(c for _, c in parts) - min(c for _, c in parts) <= 1
