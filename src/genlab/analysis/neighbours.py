"""Nearest training images of generated ones (`genlab neighbours`): does the generator copy its training set?

For N generated images, their k nearest training images in two spaces:
- ``features``: Euclidean distance between extractor features (the space FID and ``copies`` measure in); the
  whole training split (``data.limit`` applied, as in training) is embedded;
- ``pixels``: Euclidean distance between the images themselves, pixels in [-1, 1] (a copy is near 0; a
  shifted copy is not, which the feature space catches); the whole training split is searched.
The search is exact (``genlab.metrics.memorization.nearest``). The numbers go to analysis/neighbours.json, the
figure (a row per generated image and space: the image, then its k neighbours) to analysis/neighbours.png.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.data import load_dataset
from genlab.data.base import ImageData, to_float
from genlab.errors import GenlabError
from genlab.metrics import compute_features
from genlab.metrics.features.base import FeatureExtractor
from genlab.metrics.memorization import nearest
from genlab.metrics.protocols import BATCH_SIZE
from genlab.metrics.refstats import iter_batches

SPACES = ("features", "pixels")
UNITS = {"features": "Euclidean distance between extractor features",
         "pixels": "Euclidean distance between images, pixels in [-1, 1]"}


@dataclass
class SpaceNeighbours:
    """The k nearest training images of each generated image in one space."""

    space: str
    distances: np.ndarray  # (N, k) float64, nearest first
    indices: np.ndarray  # (N, k) int64 rows of the training split

    def to_dict(self) -> dict:
        return {"distances": [[float(d) for d in row] for row in self.distances],
                "indices": [[int(i) for i in row] for row in self.indices], "units": UNITS[self.space],
                "nearest_median": float(np.median(self.distances[:, 0]))}


@dataclass
class Neighbours:
    generated: torch.Tensor  # (N, C, H, W) float in [-1, 1]
    train: ImageData  # the training split that was searched
    spaces: list[SpaceNeighbours] = field(default_factory=list)
    extractor: str | None = None  # name and hash of the feature space's extractor

    @property
    def k(self) -> int:
        return int(self.spaces[0].indices.shape[1]) if self.spaces else 0

    def grid(self) -> tuple[torch.Tensor, list[str], list[list[float]]]:
        """(images in [-1, 1], one row per generated image and space: the image then its k neighbours; the row
        labels; each row's distances) for a figure."""
        rows, labels, dists = [], [], []
        for i in range(len(self.generated)):
            for s in self.spaces:
                rows += [self.generated[i:i + 1], to_float(self.train.images[torch.from_numpy(s.indices[i])])]
                labels.append(f"#{i} {s.space}")
                dists.append([float(d) for d in s.distances[i]])
        return torch.cat(rows), labels, dists

    def to_dict(self) -> dict:
        return {"num": len(self.generated), "k": self.k, "num_train": len(self.train),
                "train_split": self.train.split, "extractor": self.extractor,
                "spaces": {s.space: s.to_dict() for s in self.spaces}}


def check_spaces(spaces: Sequence[str]) -> tuple[str, ...]:
    bad = [s for s in spaces if s not in SPACES]
    if bad or not spaces:
        raise GenlabError(f"neighbour space {', '.join(bad) or '(none)'} is unknown; choose from: {', '.join(SPACES)}")
    return tuple(dict.fromkeys(spaces))


def pixel_neighbours(generated: torch.Tensor, train: ImageData, k: int) -> SpaceNeighbours:
    """Nearest training images by pixels (the whole split; uint8 rows are searched as they are)."""
    if tuple(generated.shape[1:]) != tuple(train.images.shape[1:]):
        raise GenlabError(f"generated images are {tuple(generated.shape[1:])} but the training images are "
                          f"{tuple(train.images.shape[1:])}: pixel neighbours need the same size")
    q = (generated.double().clamp(-1, 1) + 1) * 127.5  # the uint8 scale of the training images
    d, i = nearest(q, train.images, k)
    return SpaceNeighbours("pixels", d / 127.5, i)


def feature_neighbours(generated: torch.Tensor, train: ImageData, k: int, extractor: FeatureExtractor,
                       batch_size: int = BATCH_SIZE) -> SpaceNeighbours:
    """Nearest training images by ``extractor`` features (every training image is embedded)."""
    gen = compute_features(extractor, iter_batches(generated, batch_size)).features
    base = compute_features(extractor, iter_batches(train.images, batch_size)).features
    d, i = nearest(gen, base, k)
    return SpaceNeighbours("features", d, i)


def find_neighbours(generated: torch.Tensor, train: ImageData, k: int = 5, spaces: Sequence[str] = SPACES,
                    extractor: FeatureExtractor | None = None, batch_size: int = BATCH_SIZE) -> Neighbours:
    """The ``k`` nearest images of ``train`` to each generated image, in each of ``spaces``."""
    spaces = check_spaces(spaces)
    if k < 1 or k > len(train):
        raise GenlabError(f"--k {k} is not allowed: between 1 and the {len(train)} training images")
    out = Neighbours(generated=generated, train=train)
    for space in spaces:
        if space == "features":
            if extractor is None:
                raise GenlabError("feature-space neighbours need an extractor")
            out.spaces.append(feature_neighbours(generated, train, k, extractor, batch_size))
            out.extractor = f"{extractor.name} {extractor.hash[:12]}"
        else:
            out.spaces.append(pixel_neighbours(generated, train, k))
    return out


def run_neighbours(run, num: int = 8, k: int = 5, spaces: Sequence[str] = SPACES, seed: int = 0,
                   extractor: FeatureExtractor | None = None) -> Neighbours:
    """``num`` images of a loaded run (seeded, as `genlab sample` draws them) and their training neighbours."""
    if num < 1:
        raise GenlabError(f"--num {num} is not allowed: at least 1 generated image")
    spaces = check_spaces(spaces)
    train = load_dataset(run.cfg.data, split="train")
    with torch.no_grad():
        generated = run.sampler(seed)(num) if run.conditioning.captioned else run.sample(num, seed=seed)
    return find_neighbours(generated, train, k, spaces, extractor)
