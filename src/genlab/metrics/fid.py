"""Frechet distance between two Gaussians fitted to features (FID when the features are Inception's).

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

``tr((S1 S2)^(1/2))`` is computed without ever forming the non-symmetric product S1 S2: with
S1^(1/2) = V diag(sqrt(w)) V^T from a symmetric eigendecomposition (``eigh``, negative round-off
eigenvalues clipped to 0), S1 S2 is similar to the symmetric PSD matrix A = S1^(1/2) S2 S1^(1/2), so
tr((S1 S2)^(1/2)) = sum sqrt(eig(A)), eigenvalues from ``eigvalsh`` (clipped to 0). A is formed as B^T S2 B
with B = V diag(sqrt(w)), which is orthogonally similar (A = V B^T S2 B V^T) and saves one d^3 product;
when S2 has a Cholesky factor S2 = L L^T, B^T S2 B = C^T C with C = L^T B (a triangular product and a
symmetric rank-k update: half the work of two general products). In float64 this is several times faster
than ``scipy.linalg.sqrtm`` and never produces the complex parts or ``inf`` that the general square root
gives on nearly singular covariances. LAPACK reads one triangle of each symmetric matrix.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.linalg.blas

from genlab.metrics.stats import FeatureStats, as_float64, check_finite

FID = "fid"


def _covariance(sigma: Any, what: str) -> np.ndarray:
    s = as_float64(sigma)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"{what} must be a square matrix, got shape {s.shape}")
    check_finite(s, what)
    return s


def sqrt_factor(sigma: np.ndarray) -> np.ndarray:
    """B = V diag(sqrt(max(w, 0))) from ``eigh(sigma)``: B B^T = sigma and sigma^(1/2) = B V^T."""
    w, v = scipy.linalg.eigh(sigma, driver="evd", check_finite=False)
    return v * np.sqrt(np.clip(w, 0, None))


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """The symmetric PSD square root V diag(sqrt(max(w, 0))) V^T of a covariance."""
    w, v = scipy.linalg.eigh(sigma, driver="evd", check_finite=False)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _sandwich(b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """B^T S B for symmetric PSD S (lower triangle valid): C^T C with C = L^T B when S = L L^T (Cholesky),
    else two general products when S is singular."""
    try:
        chol = scipy.linalg.cholesky(s, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return b.T @ (s @ b)
    c = scipy.linalg.blas.dtrmm(1.0, chol, b, lower=1, trans_a=1)  # L^T B
    return scipy.linalg.blas.dsyrk(1.0, c, trans=1, lower=1)  # C^T C, lower triangle


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2: sum sqrt(eig(B^T S2 B)), B B^T = S1 from eigh."""
    b = sqrt_factor(_covariance(sigma1, "sigma1"))
    a = _sandwich(b, _covariance(sigma2, "sigma2"))
    w = scipy.linalg.eigvalsh(a, lower=True, driver="evd", overwrite_a=True, check_finite=False)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Accepts numpy arrays or tensors; returns a Python float (>= 0 up to round-off, clipped at 0).
    """
    m1, m2 = as_float64(mu1), as_float64(mu2)
    s1, s2 = _covariance(sigma1, "sigma1"), _covariance(sigma2, "sigma2")
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape[0] != m1.shape[0]:
        raise ValueError(f"shapes differ: mu {m1.shape} vs {m2.shape}, sigma {s1.shape} vs {s2.shape}")
    check_finite(m1, "mu1")
    check_finite(m2, "mu2")
    diff = m1 - m2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    return float(max(value, 0.0))


def frechet_distance_sqrtm(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """The textbook route, ``scipy.linalg.sqrtm(sigma1 @ sigma2)``; a reference for tests and benchmarks only."""
    m1, m2 = as_float64(mu1), as_float64(mu2)
    s1, s2 = as_float64(sigma1), as_float64(sigma2)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean).real)


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two sets' statistics; both must come from the same extractor (same feature size)."""
    if a.dim != b.dim:
        raise ValueError(f"statistics of different feature sizes ({a.dim} vs {b.dim}): different extractors?")
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
