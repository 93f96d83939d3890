"""Class coverage: which classes a generator produces, judged by a classifier -- the number behind
"partial mode collapse".

From the predicted classes of generated samples (argmax of the extractor's logits):
- histogram: counts per class;
- entropy (nats) and entropy_normalized (entropy / log K; 1 = uniform over K classes);
- kl_to_real: KL(generated || real) against the real split's predicted-class distribution (the same
  classifier on real images, so its own errors cancel). Real shares are smoothed with +0.5 per class,
  so a class the real data never shows gives a large but finite value;
- classes_covered: classes seen in real data whose generated share reaches ``min_share`` (default 0.1) of
  their real share, i.e. a class counts as covered when it appears at least a tenth as often as in real
  data; ``classes_in_real`` is how many classes the real data shows (without real data: all K, uniform).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

COVERAGE = "coverage"


@dataclass(frozen=True)
class ClassCoverageResult:
    histogram: list[int]
    entropy: float
    entropy_normalized: float
    kl_to_real: float | None
    classes_covered: int
    classes_in_real: int
    num_classes: int


def class_histogram(predicted: Any, num_classes: int) -> np.ndarray:
    p = np.asarray(predicted, dtype=np.int64).reshape(-1)
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted classes must lie in [0, {num_classes}), got [{p.min()}, {p.max()}]")
    return np.bincount(p, minlength=num_classes).astype(np.int64)


def class_coverage(
    generated_hist: Any, real_hist: Any | None = None, min_share: float = 0.1
) -> ClassCoverageResult:
    """Coverage statistics of a generated class histogram, against a real one when given (else uniform)."""
    g = np.asarray(generated_hist, dtype=np.float64)
    k = g.shape[0]
    total = g.sum()
    if total <= 0:
        raise ValueError("the generated class histogram is empty")
    pg = g / total
    nz = pg > 0
    entropy = float(-(pg[nz] * np.log(pg[nz])).sum())
    kl = None
    if real_hist is None:
        pr = np.full(k, 1.0 / k)
    else:
        r = np.asarray(real_hist, dtype=np.float64)
        if r.shape != g.shape:
            raise ValueError(f"class histograms differ in size: {g.shape[0]} vs {r.shape[0]}")
        pr = (r + 0.5) / (r.sum() + 0.5 * k)
        kl = float((pg[nz] * (np.log(pg[nz]) - np.log(pr[nz]))).sum())
    real_classes = np.ones(k, dtype=bool) if real_hist is None else np.asarray(real_hist) > 0
    covered = int((real_classes & (pg >= min_share * pr)).sum())
    return ClassCoverageResult(
        histogram=[int(c) for c in g],
        entropy=entropy,
        entropy_normalized=entropy / np.log(k) if k > 1 else 1.0,
        kl_to_real=kl,
        classes_covered=covered,
        classes_in_real=int(real_classes.sum()),
        num_classes=k,
    )
