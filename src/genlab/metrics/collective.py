"""How an evaluation is split over processes: ``Collective``, and ``SINGLE_PROCESS``, the world of one.

``genlab.metrics.evaluate(..., collective=...)`` asks a collective only for what it needs: this process's rank
and the world size (to take its share of the samples), ``gather`` (everyone's feature rows, in rank order) and
``main_first`` (work done once and cached, such as training the classifier extractor or the reference
statistics). Metrics never import training: ``genlab.training.distributed.collective()`` provides the
torch.distributed implementation, and any object with these members will do (tests run fake ranks in threads).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch

T = TypeVar("T")


class Collective(Protocol):
    """The processes that evaluate together. Every member must be called by every rank, in the same order."""

    @property
    def rank(self) -> int:
        """This process's place in the world, 0 .. world_size - 1."""
        ...

    @property
    def world_size(self) -> int:
        """How many processes share the evaluation."""
        ...

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's ``rows`` (same trailing shape, any count) concatenated in rank order, on every rank."""
        ...

    def main_first(self, fn: Callable[[], T]) -> T:
        """``fn()`` on rank 0 while the others wait, then on the others (which read what rank 0 cached);
        a GenlabError raised on rank 0 is raised on every rank. Returns each rank's own ``fn()``."""
        ...


@dataclass(frozen=True)
class SingleProcess:
    """The world of one: gather returns the rows themselves and ``main_first`` just calls ``fn``."""

    rank: int = 0
    world_size: int = 1

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return rows

    def main_first(self, fn: Callable[[], T]) -> T:
        return fn()


SINGLE_PROCESS = SingleProcess()


def shard(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """(start, count) of rank ``rank``'s contiguous share of ``n`` items (the first ``n % world_size`` ranks
    take one more), so the shards in rank order are 0 .. n - 1 exactly once."""
    base, extra = divmod(n, world_size)
    count = base + (1 if rank < extra else 0)
    start = rank * base + min(rank, extra)
    return start, count
