"""Seeded blocks that leave every random stream as they found it and seed no GPU they were not asked to.

``torch.manual_seed`` seeds every CUDA device, and when CUDA is not initialised yet it queues that seed for the
moment it is; under a CPU-only ``fork_rng`` the GPUs' streams are then reseeded for good. A training process
that evaluates (``eval.every``) would replay its noise after each evaluation and a resume would diverge.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch


def initialised_gpus() -> list[int]:
    """The CUDA devices whose random streams may be in use (none until CUDA is initialised)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


@contextlib.contextmanager
def seeded(seed: int, gpus: Sequence[int] = ()) -> Iterator[None]:
    """Run the block with the CPU generator and those of ``gpus`` (device indices) seeded with ``seed``; all of
    them are restored afterwards, and no other generator is touched."""
    with torch.random.fork_rng(devices=list(gpus)):
        torch.default_generator.manual_seed(seed)
        for index in gpus:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
