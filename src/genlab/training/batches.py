"""The training set on the device and the batches of an epoch (a pure function of seed and epoch)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.training import perf
from genlab.training.phases import Batch


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch, a pure function of (seed, epoch): resume needs no saved order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


@dataclass
class Batches:
    """uint8 images (and labels) on the training device, cut into this rank's share of each global batch."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor | None  # int64 (N,) or None
    batch_size: int  # global: all ranks together (train.batch_size)
    runtime: perf.Runtime  # the memory layout of the batches
    rank: int = 0
    world_size: int = 1

    @property
    def local_batch_size(self) -> int:
        return self.batch_size // self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def permutation(self, seed: int, epoch: int) -> torch.Tensor:
        return epoch_permutation(seed, epoch, len(self.images)).to(self.images.device)

    def at(self, perm: torch.Tensor, step_in_epoch: int) -> Batch:
        """This rank's share of global batch ``step_in_epoch`` of an epoch, normalised, in the run's layout."""
        local = self.local_batch_size
        lo = step_in_epoch * self.batch_size + self.rank * local
        idx = perm[lo:lo + local]
        return Batch(perf.input_batch(self.images[idx], self.runtime),
                     self.labels[idx] if self.labels is not None else None, idx=idx)
