"""Latent maps: decode a grid over a latent plane, traverse chosen dimensions, encode a labeled split.

- ``latent_plane``: the 2-D latent grid of the Keras MNIST VAE example: decode z over [-r, r]^2 (or over
  normal quantiles, so every cell holds equal prior mass). For latents above 2-D, two chosen dimensions vary
  and the others stay at a base point (zeros by default).
- ``traversal``: one row per chosen dimension, that dimension swept over [-r, r] around a base latent.
- ``encode_split`` + ``pca_2d``: encoder means of labeled test images projected to 2-D for a class scatter.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genlab.analysis.interpolation import encode_images, labels_for
from genlab.data import load_dataset
from genlab.data.base import to_float
from genlab.errors import GenlabError

GRIDS = ("quantile", "linear")


def axis_values(n: int, radius: float = 2.0, grid: str = "quantile") -> np.ndarray:
    """``n`` latent coordinates: evenly spaced in [-radius, radius] (linear) or standard-normal quantiles
    in (0.05 .. 0.95) (quantile: equal prior probability between neighbouring cells)."""
    if n < 2:
        raise GenlabError(f"a latent grid needs at least 2 values per axis, got {n}")
    if grid == "linear":
        if radius <= 0:
            raise GenlabError(f"radius must be positive, got {radius}")
        return np.linspace(-radius, radius, n)
    if grid == "quantile":
        from scipy.stats import norm

        return norm.ppf(np.linspace(0.05, 0.95, n))
    raise GenlabError(f"latent grid {grid!r} is unknown; choose one of: {', '.join(GRIDS)}")


def _check_dims(run, dims: Sequence[int]) -> list[int]:
    d = run.cfg.model.latent_dim
    dims = [int(i) for i in dims]
    bad = [i for i in dims if not 0 <= i < d]
    if bad:
        raise GenlabError(f"latent dimensions {bad} are out of range: this model has latent_dim={d} (0..{d - 1})")
    return dims


@dataclass
class LatentPlane:
    images: torch.Tensor  # (n * n, C, H, W), row-major, top row = largest value of dims[1]
    xs: np.ndarray  # values of dims[0], left to right
    ys: np.ndarray  # values of dims[1], top to bottom (descending)
    dims: tuple[int, int]


def latent_plane(run, n: int = 15, radius: float = 2.0, grid: str = "quantile", dims: Sequence[int] = (0, 1),
                 base: torch.Tensor | None = None, label: int | None = None) -> LatentPlane:
    """Decode an ``n`` x ``n`` grid over latent dimensions ``dims`` (other dimensions fixed at ``base``)."""
    dims = _check_dims(run, dims)
    if len(dims) != 2 or dims[0] == dims[1]:
        raise GenlabError(f"a latent plane needs two different dimensions, got {dims}")
    d = run.cfg.model.latent_dim
    vals = axis_values(n, radius, grid)
    base = torch.zeros(d) if base is None else base.reshape(-1).float().cpu()
    z = base.repeat(n * n, 1)
    ys = vals[::-1].copy()
    for r, yv in enumerate(ys):
        for c, xv in enumerate(vals):
            z[r * n + c, dims[0]] = float(xv)
            z[r * n + c, dims[1]] = float(yv)
    images = run.generate(z, labels_for(run, len(z), label))
    return LatentPlane(images=images, xs=vals, ys=ys, dims=(dims[0], dims[1]))


@dataclass
class Traversal:
    images: torch.Tensor  # (len(dims) * steps, C, H, W): row i sweeps dims[i]
    values: np.ndarray  # the swept values, left to right
    dims: list[int]


def traversal(run, dims: Sequence[int] | None = None, steps: int = 9, radius: float = 3.0, seed: int = 0,
              base: torch.Tensor | None = None, label: int | None = None, max_dims: int = 8) -> Traversal:
    """Each row sweeps one latent dimension over [-radius, radius] around a base latent (seeded, or given).

    ``dims`` defaults to the first ``max_dims`` dimensions. For a VAE with base=None the base is the prior
    mean (zeros), which shows what each dimension encodes on its own.
    """
    d = run.cfg.model.latent_dim
    dims = _check_dims(run, dims if dims else range(min(d, max_dims)))
    if not dims:
        raise GenlabError("no latent dimensions to traverse")
    vals = axis_values(steps, radius, "linear")
    if base is None:
        base = torch.zeros(d) if "E" in run.nets else run.latents(1, seed).cpu()[0]
    base = base.reshape(-1).float().cpu()
    z = base.repeat(len(dims) * steps, 1)
    for r, dim in enumerate(dims):
        z[r * steps:(r + 1) * steps, dim] = torch.as_tensor(vals, dtype=torch.float32)
    images = run.generate(z, labels_for(run, len(z), label))
    return Traversal(images=images, values=vals, dims=dims)


@dataclass
class EncodedSplit:
    points: np.ndarray  # (N, D) encoder means
    labels: np.ndarray | None  # (N,) class ids, or None for unlabeled data
    class_names: list[str]


def encode_split(run, split: str = "test", limit: int = 2000) -> EncodedSplit:
    """Encode the first ``limit`` images of a split of the run's dataset (VAEs only)."""
    if "E" not in run.nets:
        raise GenlabError(f"model {run.cfg.model.name} has no encoder; a latent scatter needs a VAE")
    data = load_dataset(run.cfg.data, split=split)
    if limit and limit < len(data):
        data = data.subset(limit)
    labels = data.labels if data.labeled else None
    mu = encode_images(run, to_float(data.images), labels)
    return EncodedSplit(points=mu.numpy(), labels=None if labels is None else labels.numpy(),
                        class_names=list(data.class_names))


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, D) points onto their first two principal components -> (N, 2) and explained-variance ratios.

    2-D inputs come back unchanged (ratio 1, 1); 1-D inputs get a zero second coordinate.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise GenlabError(f"expected (N, D) points, got shape {x.shape}")
    if x.shape[1] <= 2:
        out = np.zeros((len(x), 2))
        out[:, :x.shape[1]] = x
        return out, np.ones(2)
    xc = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    # fix the sign so the result does not depend on the SVD implementation
    signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())
    signs[signs == 0] = 1
    proj = xc @ (vt[:2].T * signs)
    var = s ** 2
    return proj, var[:2] / max(var.sum(), 1e-12)
