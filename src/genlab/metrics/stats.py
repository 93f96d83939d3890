"""The middle stages of every metric: a feature set (``Features``) and its statistics (``FeatureStats``).

Features are what an extractor returns for N images: an (N, D) array of activations plus, for extractors
with a classifier head, (N, K) logits. Statistics are computed from them in float64; raw feature rows are
kept where KID and precision/recall need them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlab.errors import GenlabError

# Rows per chunk when accumulating the covariance: bounds float64 temporaries to ~chunk x D.
_COV_CHUNK = 4096


class FeatureWarning(UserWarning):
    """Statistics that are computable but not trustworthy (e.g. a singular covariance)."""


def as_float64(x: Any, what: str = "array") -> np.ndarray:
    """``x`` (numpy array or CPU/GPU tensor) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.double().numpy() if x.dtype != torch.float64 else x.numpy()
    return np.asarray(x, dtype=np.float64)


def check_finite(x: Any, what: str) -> None:
    """Raise a GenlabError when ``x`` holds a NaN or an infinity (a diverged generator, a broken extractor)."""
    if isinstance(x, torch.Tensor):
        bad = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
    else:
        arr = np.asarray(x)
        bad = int((~np.isfinite(arr)).sum()) if np.issubdtype(arr.dtype, np.floating) else 0
    if bad:
        raise GenlabError(
            f"{what} contain {bad} NaN or infinite value(s); metrics would be meaningless. "
            "Check the generator (a diverged run?) or the images fed to the metric."
        )


@dataclass(frozen=True)
class Features:
    """What an extractor made of N images.

    features: (N, D) float array (float32 as extracted; statistics upcast to float64).
    logits: (N, K) float array from the extractor's classifier head, or None.
    """

    features: np.ndarray
    logits: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {self.features.shape}")
        check_finite(self.features, "features")
        if self.logits is not None:
            if self.logits.ndim != 2 or len(self.logits) != len(self.features):
                raise ValueError(f"logits must be (N, K) with N={len(self.features)}, got {self.logits.shape}")
            check_finite(self.logits, "logits")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def predicted_classes(self) -> np.ndarray | None:
        return None if self.logits is None else np.asarray(self.logits).argmax(axis=1)


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (divisor N - 1) in float64, two passes, chunked so N can be large."""
    n, d = features.shape
    if n < 2:
        raise GenlabError(f"statistics need at least 2 samples, got {n}")
    mu = np.zeros(d, dtype=np.float64)
    for i in range(0, n, _COV_CHUNK):
        mu += features[i : i + _COV_CHUNK].astype(np.float64).sum(axis=0)
    mu /= n
    cov = np.zeros((d, d), dtype=np.float64)
    for i in range(0, n, _COV_CHUNK):
        xc = features[i : i + _COV_CHUNK].astype(np.float64) - mu
        cov += xc.T @ xc
    cov /= n - 1
    return mu, (cov + cov.T) / 2


def warn_if_singular(n: int, d: int, what: str = "features") -> None:
    """A covariance of n samples has rank <= n - 1: with n <= d it is singular and FID is biased."""
    if n <= d:
        warnings.warn(
            f"{n} samples of {d}-d {what}: the covariance is singular (rank <= {n - 1}); "
            f"use at least {d + 1} samples (FID is usually reported on 10000 or 50000)",
            FeatureWarning,
            stacklevel=3,
        )


@dataclass
class FeatureStats:
    """Statistics of one image set under one extractor.

    mu: (D,) float64 mean; sigma: (D, D) float64 unbiased covariance; n: number of images.
    features: raw (M, D) rows (M <= n, a seeded subset when capped) for KID and precision/recall, or None.
    class_hist: (K,) int64 counts of predicted classes (argmax of the extractor's logits), or None.
    labels: (M,) int64 true class of each raw row (reference statistics of labeled data), or None.
    """

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray | None = None
    class_hist: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @classmethod
    def from_features(
        cls, feats: Features | np.ndarray, keep: int | None = None, seed: int = 0, labels: Any = None
    ) -> FeatureStats:
        """Statistics of ``feats``; keeps all raw rows (``keep=None``), none (0) or a seeded subset of ``keep``
        (``labels``: the (N,) class of each row, kept for the same rows)."""
        if not isinstance(feats, Features):
            feats = Features(np.asarray(feats))
        x = feats.features
        n, d = x.shape
        mu, sigma = mean_cov(x)
        warn_if_singular(n, d)
        rows: np.ndarray | None = x
        lab = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        if lab is not None and len(lab) != n:
            raise ValueError(f"{len(lab)} labels for {n} feature rows")
        if keep is not None and keep < n:
            idx = np.sort(np.random.default_rng(seed).choice(n, keep, replace=False)) if keep > 0 else None
            rows = None if idx is None else x[idx]
            lab = None if idx is None or lab is None else lab[idx]
        hist = None
        if feats.logits is not None:
            k = feats.logits.shape[1]
            hist = np.bincount(np.asarray(feats.predicted_classes()), minlength=k).astype(np.int64)
        return cls(mu=mu, sigma=sigma, n=n, features=rows, class_hist=hist, labels=lab)

    def state(self) -> dict[str, Any]:
        """A dict of tensors and numbers, loadable with ``torch.load(weights_only=True)``."""
        return {
            "mu": torch.from_numpy(self.mu),
            "sigma": torch.from_numpy(self.sigma),
            "n": int(self.n),
            "features": None if self.features is None else torch.from_numpy(np.ascontiguousarray(self.features)),
            "class_hist": None if self.class_hist is None else torch.from_numpy(self.class_hist),
            "labels": None if self.labels is None else torch.from_numpy(self.labels),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureStats:
        feats, hist, labels = state.get("features"), state.get("class_hist"), state.get("labels")
        return cls(
            mu=state["mu"].numpy(),
            sigma=state["sigma"].numpy(),
            n=int(state["n"]),
            features=None if feats is None else feats.numpy(),
            class_hist=None if hist is None else hist.numpy(),
            labels=None if labels is None else labels.numpy(),
        )
