"""Inception Score (Salimans et al., 2016): exp(E_x KL(p(y|x) || p(y))), over ``splits`` chunks.

Computed in float64 from logits (log-softmax, numerically stable) or from probabilities. The samples are
split in order into ``splits`` nearly equal chunks; the score is the mean over chunks and the spread is
their population standard deviation, as in the original code. The value lies in [1, K].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

from genlab.errors import GenlabError
from genlab.metrics.stats import as_float64, check_finite

IS = "is"


@dataclass(frozen=True)
class ISResult:
    mean: float
    std: float
    splits: int


def inception_score(logits: Any | None = None, *, probs: Any | None = None, splits: int = 10) -> ISResult:
    """IS from (N, K) ``logits`` or (N, K) ``probs`` (exactly one of them)."""
    if (logits is None) == (probs is None):
        raise ValueError("pass exactly one of logits or probs")
    if logits is not None:
        x = as_float64(logits)
        check_finite(x, "logits")
        log_p = scipy.special.log_softmax(x, axis=1)
    else:
        p = as_float64(probs)
        check_finite(p, "probabilities")
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
            raise ValueError("probs must be non-negative rows that sum to 1")
        with np.errstate(divide="ignore"):
            log_p = np.log(p)
    n = log_p.shape[0]
    if n < splits:
        raise GenlabError(f"Inception Score with {splits} splits needs at least {splits} samples, got {n}")
    scores = []
    for chunk in np.array_split(log_p, splits):
        p = np.exp(chunk)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_marginal = np.log(p.mean(axis=0))
            # 0 * log 0 := 0 for classes with zero probability
            kl = np.where(p > 0, p * (chunk - log_marginal), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    s = np.asarray(scores)
    return ISResult(mean=float(s.mean()), std=float(s.std()), splits=splits)
