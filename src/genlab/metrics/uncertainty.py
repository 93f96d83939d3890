"""Numbers with their uncertainty: FD-infinity (``fid_inf``) and bootstrap confidence intervals (``ci95``).

FD-infinity (Chong and Forsyth, "Effectively Unbiased FID and Inception Score and where to find them", CVPR
2020): FID is biased upwards by roughly c / N for N generated samples, with a c that depends on the model, so
FIDs from different N (and models ranked at one N) are not comparable. Their estimate: FID at several sample
counts N_1 < ... < N_P, a least-squares line of FID against 1/N, and its intercept (N -> infinity). Here the
counts are ``points`` values evenly spaced from ``min(min_count, N // 2)`` to N (their protocol: 15 points from
5000 to 50000), the subsets are nested prefixes of one seeded permutation of the generated rows (so the P
covariances cost one pass over the data), and the reference statistics are fixed, as in the paper.

Bootstrap intervals: ``resamples`` seeded resamples, with replacement, of the *generated* rows; FID and KID
are recomputed on each and the interval is their ``level`` quantile range, shifted by the bootstrap's estimate
of its own bias (mean over resamples minus the full-sample value): a resample repeats rows, which inflates
FID (and MMD^2) by about the c / N above, so the raw quantiles would sit above the number they bound. Only
the generated side is resampled: the reference statistics are one fixed, cached property of the dataset split,
shared by every model compared under one protocol; the question the interval answers is how far this number
would move with another draw of N samples from this model. KID's interval is that of the unbiased MMD^2 on a
seeded subsample of ``kid_rows`` rows per side (kernel matrices built once, each resample reweights them):
an estimator with KID's expectation whose spread is that of an estimate from ``kid_rows`` rows per side (KID
averages subsets of all N rows; its own spread may be somewhat smaller when N is much larger than that).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.metrics.fid import cholesky_factor
from genlab.metrics.kid import polynomial_kernel
from genlab.metrics.stats import as_float64, check_finite

FID_INF = "fid_inf"
CI95 = "ci95"


@dataclass(frozen=True)
class FIDInfResult:
    value: float  # the intercept of FID against 1/N: FID extrapolated to infinitely many samples
    slope: float  # FID ~ value + slope / N
    counts: list[int]  # the sample counts of the fit points
    fids: list[float]  # FID at each count


def fit_counts(n: int, points: int = 15, min_count: int = 5000) -> list[int]:
    """The sample counts of the fit: ``points`` evenly spaced from min(min_count, n // 2) to n (distinct)."""
    if n < 4:
        raise GenlabError(f"fid_inf needs at least 4 generated samples (two sample counts to fit), got {n}")
    lo = max(2, min(min_count, n // 2))
    return sorted({int(round(c)) for c in np.linspace(lo, n, max(points, 2))})


class _FixedReference:
    """FID against fixed reference statistics, for many generated (mean, covariance) pairs: the reference is
    factored once (S_r = F F^T, ``cholesky_factor``), each pair costs one sandwich F^T S F and its eigenvalues.
    Runs in torch float64 (its thread setting), so a loop of small solves never waits on BLAS thread wake-ups."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray):
        sigma = as_float64(sigma)
        self.mu = torch.from_numpy(as_float64(mu))
        self.factor = torch.from_numpy(cholesky_factor(sigma).dense())
        self.trace = float(np.trace(sigma))

    def fid(self, mean: torch.Tensor, sigma: torch.Tensor) -> float:
        diff = mean - self.mu
        w = torch.linalg.eigvalsh(self.factor.T @ sigma @ self.factor) if self.factor.shape[1] else torch.zeros(0)
        value = float(diff @ diff) + float(torch.trace(sigma)) + self.trace - 2.0 * float(w.clamp(min=0).sqrt().sum())
        return max(value, 0.0)


def fid_infinity(features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray, points: int = 15,
                 min_count: int = 5000, seed: int = 0) -> FIDInfResult:
    """FD-infinity of generated feature rows (N, D) against reference statistics (mu, sigma)."""
    x = as_float64(features)
    check_finite(x, "generated features")
    counts = fit_counts(len(x), points, min_count)
    xt = torch.from_numpy(x[np.random.default_rng(seed).permutation(len(x))])
    ref = _FixedReference(ref_mu, ref_sigma)
    # nested prefixes: running sums of rows and of outer products, centred on the first row for accuracy
    shift = xt[0].clone()
    s1 = torch.zeros(x.shape[1], dtype=torch.float64)
    s2 = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    done, fids = 0, []
    for n in counts:
        block = xt[done:n] - shift
        s1 += block.sum(dim=0)
        s2 += block.T @ block
        done = n
        mean = s1 / n
        sigma = (s2 - n * torch.outer(mean, mean)) / (n - 1)
        fids.append(ref.fid(mean + shift, (sigma + sigma.T) / 2))
    slope, intercept = np.polyfit(1.0 / np.asarray(counts, dtype=np.float64), np.asarray(fids), 1)
    return FIDInfResult(value=float(intercept), slope=float(slope), counts=counts, fids=fids)


@dataclass(frozen=True)
class CIResult:
    fid_low: float
    fid_high: float
    fid_std: float  # standard deviation of FID over the resamples
    kid_low: float
    kid_high: float
    kid_std: float
    resamples: int
    level: float
    kid_rows: int  # rows per side behind the KID interval


def interval(values: np.ndarray, full: float, level: float) -> tuple[float, float]:
    """The ``level`` quantile range of the bootstrap values, shifted by their bias (mean - full-sample value)."""
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2]) - (values.mean() - full)
    return float(lo), float(hi)


def bootstrap_fid(features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray, resamples: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """FID of ``resamples`` resamples (with replacement) of the generated rows against fixed reference stats,
    and the FID of the rows themselves."""
    x = as_float64(features)
    n = len(x)
    centre = x.mean(axis=0)
    xt = torch.from_numpy(x - centre)  # centred once: each resample's moments are then well conditioned sums
    ref = _FixedReference(as_float64(ref_mu) - centre, ref_sigma)
    out = np.empty(resamples)
    for b in range(resamples):
        counts = torch.from_numpy(np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64))
        mean = counts @ xt / n
        sigma = ((xt * counts[:, None]).T @ xt - n * torch.outer(mean, mean)) / (n - 1)
        out[b] = ref.fid(mean, (sigma + sigma.T) / 2)
    sigma = xt.T @ xt / (n - 1)
    return out, ref.fid(torch.zeros(x.shape[1], dtype=torch.float64), (sigma + sigma.T) / 2)


def bootstrap_mmd2(gen: np.ndarray, ref: np.ndarray, resamples: int, rng: np.random.Generator,
                   kernel: Callable[[np.ndarray, np.ndarray], np.ndarray] = polynomial_kernel,
                   biased: bool = False) -> tuple[np.ndarray, float]:
    """MMD^2 (default: KID's cubic kernel, unbiased) of ``resamples`` resamples of the generated rows against
    ``ref`` (equal sizes m): the unbiased form sums over pairs p != q of resampled positions, i.e.
    c^T K c - c . diag(K) for counts c; ``biased`` keeps the diagonals (c^T K c / m^2, CMMD's reference code).
    Also returns the MMD^2 of the rows themselves (c = 1)."""
    m = len(gen)
    kxx = kernel(gen, gen)
    kyy = kernel(ref, ref)
    kxy_rows = kernel(gen, ref).sum(axis=1)
    counts = np.stack([np.bincount(rng.integers(0, m, m), minlength=m) for _ in range(resamples + 1)])
    counts = counts.astype(np.float64)
    counts[-1] = 1.0  # the rows themselves
    quad = np.einsum("bi,bi->b", counts @ kxx, counts)
    if biased:
        values = quad / (m * m) + kyy.sum() / (m * m) - 2.0 * (counts @ kxy_rows) / (m * m)
    else:
        yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values = (quad - counts @ np.diag(kxx)) / (m * (m - 1)) + yy - 2.0 * (counts @ kxy_rows) / (m * m)
    return values[:-1], float(values[-1])


def bootstrap_intervals(gen: np.ndarray, ref: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray,
                        resamples: int = 50, level: float = 0.95, seed: int = 0, kid_rows: int = 2000) -> CIResult:
    """Percentile bootstrap intervals of FID and KID (see the module docstring for what is resampled)."""
    if resamples < 2:
        raise GenlabError(f"a bootstrap interval needs at least 2 resamples, got {resamples}")
    if not 0 < level < 1:
        raise GenlabError(f"the interval's level must be in (0, 1), got {level}")
    g, r = as_float64(gen), as_float64(ref)
    check_finite(g, "generated features")
    check_finite(r, "reference features")
    rng = np.random.default_rng(seed)
    fids, fid = bootstrap_fid(g, ref_mu, ref_sigma, resamples, rng)
    m = min(len(g), len(r), kid_rows)
    if m < 2:
        raise GenlabError(f"the KID interval needs at least 2 rows per side, got {len(g)} and {len(r)}")
    gi = np.sort(rng.choice(len(g), m, replace=False))
    ri = np.sort(rng.choice(len(r), m, replace=False))
    kids, kid = bootstrap_mmd2(g[gi], r[ri], resamples, rng)
    f_lo, f_hi = interval(fids, fid, level)
    k_lo, k_hi = interval(kids, kid, level)
    return CIResult(fid_low=f_lo, fid_high=f_hi, fid_std=float(fids.std(ddof=1)), kid_low=k_lo, kid_high=k_hi,
                    kid_std=float(kids.std(ddof=1)), resamples=resamples, level=level, kid_rows=m)
