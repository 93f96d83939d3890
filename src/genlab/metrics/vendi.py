"""The Vendi score (Friedman and Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
TMLR 2023): the diversity of one set of samples, without a reference, as the exponential of the entropy of the
eigenvalues of its similarity matrix.

With the cosine similarity of feature rows (rows L2-normalised, K = X X^T, k(x, x) = 1), the eigenvalues of K / n
are those of the (D, D) matrix X^T X / n (the "dual" form), so the score costs O(n D^2), not O(n^2):

    VS_q = exp(H_q(lambda)),  H_1 = -sum lambda_i log lambda_i,  H_q = log(sum lambda_i^q) / (1 - q)

It ranges from 1 (all samples alike) to min(n, D) (as many orthogonal directions as there can be); the
``vendi-score`` package's ``score_dual`` gives the same value (tests/metrics/test_vendi.py). Higher is more
diverse. It works on any extractor's features; genlab also reports the score of the real reference rows, the
diversity to aim for.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from genlab.errors import GenlabError
from genlab.metrics.stats import as_float64, check_finite

VENDI = "vendi"


def vendi_score(features: Any, q: float = 1.0) -> float:
    """The Vendi score of order ``q`` (> 0; 1: Shannon entropy) of feature rows (N, D) under cosine similarity."""
    x = as_float64(features)
    check_finite(x, "features")
    if x.ndim != 2 or len(x) < 1:
        raise GenlabError(f"the Vendi score needs (N, D) features, got shape {x.shape}")
    if not q > 0:
        raise GenlabError(f"the Vendi score's order q must be > 0, got {q}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)  # zero rows stay zero, as sklearn's normalize leaves them
    w = scipy.linalg.eigvalsh(x.T @ x / len(x), driver="evd", check_finite=False)
    w = w[w > 0]
    if q == 1:
        entropy = -float((w * np.log(w)).sum())
    else:
        entropy = float(np.log((w**q).sum()) / (1 - q))
    return float(np.exp(entropy))
