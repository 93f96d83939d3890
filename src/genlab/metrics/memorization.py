"""Is the generator copying its training set? Exact nearest neighbours and the ``copies`` rate.

``copies`` follows the authenticity idea of Alaa et al. 2022 ("How faithful is your synthetic data?"): a
generated image g whose nearest training image is x counts as a copy when

    d(g, x) <= d(x, nearest other training image)

i.e. g sits closer to x than any other training image does. The same rule applied to real held-out images (the
reference split) gives the baseline a reader compares with: "12% copies vs 9% for real test images". A rate
well above the real one means memorization; a rate below it is normal for a generator that blurs.

The training rows are those the cached train statistics keep: all of them up to REFERENCE_ROWS (10k), else a
seeded subset of that many; a sample copying a training image outside the subset is then measured against the
subset only, so on large training sets the rate is a lower bound of exact copying (the radii and the real baseline
are computed within the same subset, so the comparison stays fair).

Distances are Euclidean in extractor feature space. The search is exact: candidates come from a float32
matrix-product pass over centred features (fast), and the few nearest of each row are re-measured in float64,
so near-duplicates (distance ~0, where the float32 expansion |a|^2 + |b|^2 - 2ab cancels) are ranked and
compared exactly.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import GenlabError

COPIES = "copies"

#: the rule in words, recorded in every result under "threshold"
COPY_RULE = ("a sample counts as a copy when its distance to its nearest training image x is <= the distance from "
             "x to x's own nearest other training image (Alaa et al. 2022 authenticity; Euclidean, extractor features)")

# query rows per chunk: bounds the float32 distance block to CHUNK x len(base)
_CHUNK = 1024
# float32 candidates re-measured in float64 per query row (beyond the k asked for)
_EXTRA = 3


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.detach().cpu().reshape(len(t), -1)


def nearest(queries: np.ndarray | torch.Tensor, base: np.ndarray | torch.Tensor, k: int = 1,
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``base`` to each row of ``queries`` (Euclidean, exact).

    Returns (distances (N, k) float64, indices (N, k) int64), nearest first. ``exclude_self``: ``queries`` is
    ``base`` itself and row i may not be its own neighbour (other rows equal to it still count, at distance 0).
    Rows are flattened, so images (N, C, H, W) work as well as features (N, D).
    """
    q, b = _as_tensor(queries), _as_tensor(base)
    if q.shape[1] != b.shape[1]:
        raise GenlabError(f"nearest neighbours of {q.shape[1]}-d rows among {b.shape[1]}-d rows")
    avail = len(b) - (1 if exclude_self else 0)
    if k < 1 or k > avail:
        raise GenlabError(f"{k} nearest neighbours asked among {avail} candidate row(s)")
    if exclude_self and len(q) != len(b):
        raise GenlabError("exclude_self needs the queries to be the base rows themselves")
    centre = sum(b[i:i + _CHUNK].double().sum(0) for i in range(0, len(b), _CHUNK)) / len(b)
    b32 = torch.cat([b[i:i + _CHUNK].double().sub(centre).float() for i in range(0, len(b), _CHUNK)])
    b_sq = (b32 * b32).sum(1)
    m = min(k + _EXTRA, avail)
    dists, idx = [], []
    for start in range(0, len(q), _CHUNK):
        q64 = q[start:start + _CHUNK].double() - centre
        q32 = q64.float()
        d2 = torch.addmm(b_sq[None, :], q32, b32.T, alpha=-2.0)  # |q - b|^2 - |q|^2: same order per row
        if exclude_self:
            rows = torch.arange(len(q32))
            d2[rows, rows + start] = float("inf")
        cand = d2.topk(m, dim=1, largest=False).indices  # (n, m) candidates, re-measured exactly
        exact = ((q64[:, None, :] - (b[cand].double() - centre)) ** 2).sum(-1).sqrt()
        order = exact.argsort(dim=1, stable=True)[:, :k]
        dists.append(exact.gather(1, order))
        idx.append(cand.gather(1, order))
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()


@dataclass(frozen=True)
class Copies:
    """The ``copies`` result (stable keys): shares in [0, 1]."""

    copy_rate: float  # share of generated rows that are copies under COPY_RULE
    real_rate: float | None  # the same share for the real reference rows (None when none were given)
    num_generated: int
    num_real: int
    num_train: int  # training rows searched (the cached train statistics' rows: a seeded subset when capped)
    threshold: str = COPY_RULE


def copy_flags(samples: np.ndarray, train: np.ndarray, train_radius: np.ndarray) -> np.ndarray:
    """Boolean (N,): sample i is a copy of its nearest training row j (distance <= ``train_radius[j]``)."""
    d, j = nearest(samples, train, k=1)
    return d[:, 0] <= train_radius[j[:, 0]]


def train_radii(train: np.ndarray) -> np.ndarray:
    """Each training row's distance to its nearest other training row (float64, (M,))."""
    return nearest(train, train, k=1, exclude_self=True)[0][:, 0]


def _digest(a: np.ndarray | None) -> str:
    if a is None:
        return "none"
    a = np.ascontiguousarray(a)
    return hashlib.sha1(str((a.shape, a.dtype.str)).encode() + a.tobytes()).hexdigest()


class _Baselines:
    """The parts of ``copies`` that depend only on the training and real rows (the training radii and the real
    images' flags: two of its three searches), kept for the last few (train, real) pairs seen in this process,
    keyed by a hash of their bytes: repeated evaluations against the same reference (eval.every, sweeps,
    benchmarks) search only the generated rows."""

    def __init__(self, size: int = 2):
        self.size = size
        self.items: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()

    def get(self, train: np.ndarray, real: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        key = _digest(train) + _digest(real)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        radius = train_radii(train)
        flags = copy_flags(real, train, radius) if real is not None and len(real) else None
        self.items[key] = (radius, flags)
        while len(self.items) > self.size:
            self.items.popitem(last=False)
        return radius, flags


_BASELINES = _Baselines()


def copies(generated: np.ndarray, train: np.ndarray, real: np.ndarray | None = None) -> Copies:
    """The share of ``generated`` feature rows that copy a ``train`` row, and the same share for ``real`` rows."""
    if len(train) < 2:
        raise GenlabError(f"the copy rate needs at least 2 training rows, got {len(train)}")
    radius, real_flags = _BASELINES.get(np.asarray(train), None if real is None else np.asarray(real))
    gen = copy_flags(generated, train, radius)
    return Copies(copy_rate=float(gen.mean()),
                  real_rate=None if real_flags is None else float(real_flags.mean()),
                  num_generated=int(len(generated)), num_real=0 if real_flags is None else int(len(real_flags)),
                  num_train=int(len(train)))
