"""Mode coverage: how often a classifier sees each class among generated images, against real images.

A generator that drops classes (mode collapse) shows empty or thin bars. Both histograms come from the same
classifier's predictions when one is available, so its own errors affect both sides alike; the plotting and
summary functions take plain predicted-class arrays, so any classifier can feed them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genlab.data import load_dataset
from genlab.data.base import to_float
from genlab.errors import GenlabError
from genlab.metrics.class_coverage import class_coverage
from genlab.metrics.features.classifier import classifier_extractor

#: a function images (N, C, H, W) in [-1, 1] -> predicted class ids (N,)
Predictor = Callable[[torch.Tensor], torch.Tensor]


def class_histogram(pred: Sequence[int] | np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Predicted class ids -> counts per class (length ``num_classes``)."""
    p = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred).astype(np.int64).reshape(-1)
    if num_classes < 1:
        raise GenlabError(f"num_classes must be positive, got {num_classes}")
    if len(p) and (p.min() < 0 or p.max() >= num_classes):
        raise GenlabError(f"predicted classes must lie in 0..{num_classes - 1}, got {p.min()}..{p.max()}")
    return np.bincount(p, minlength=num_classes)


@dataclass
class Coverage:
    generated: np.ndarray  # counts per class among generated images
    real: np.ndarray  # counts per class among real images
    class_names: list[str]
    threshold: float = 0.1  # a class is covered when its generated share >= threshold x its real share
    source: str = ""  # what produced the predictions
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.generated)

    @property
    def generated_share(self) -> np.ndarray:
        return self.generated / max(self.generated.sum(), 1)

    @property
    def real_share(self) -> np.ndarray:
        return self.real / max(self.real.sum(), 1)

    @property
    def covered(self) -> list[int]:
        """Classes present in real data whose generated share reaches ``threshold`` x their real share (real
        shares smoothed with +0.5 per class: the rule of ``genlab.metrics.class_coverage``)."""
        smoothed = (self.real + 0.5) / (self.real.sum() + 0.5 * self.num_classes)
        return [k for k in range(self.num_classes)
                if self.real[k] > 0 and self.generated_share[k] >= self.threshold * smoothed[k]]

    @property
    def missing(self) -> list[int]:
        return [k for k in range(self.num_classes) if self.real_share[k] > 0 and k not in self.covered]

    @property
    def total_variation(self) -> float:
        """Half the L1 distance between the two class distributions: 0 = identical, 1 = disjoint."""
        return float(0.5 * np.abs(self.generated_share - self.real_share).sum())

    def summary(self) -> dict:
        names = self.class_names
        return {
            "classes_covered": len(self.covered),
            "classes_present": int((self.real > 0).sum()),
            "missing": [names[k] if k < len(names) else str(k) for k in self.missing],
            "total_variation": round(self.total_variation, 4),
            "n_generated": int(self.generated.sum()),
            "n_real": int(self.real.sum()),
            "source": self.source,
        }

    def to_dict(self) -> dict:
        """The numbers `genlab coverage` writes to analysis/coverage.json: :meth:`summary`, both histograms,
        the class names and the generated classes' entropy and KL to the real ones (the metrics package's
        ``coverage`` rules)."""
        stats = class_coverage(self.generated, self.real, self.threshold) if self.generated.sum() else None
        return {**self.summary(),
                "entropy": stats.entropy if stats else None,
                "entropy_normalized": stats.entropy_normalized if stats else None,
                "kl_to_real": stats.kl_to_real if stats else None,
                "generated": [int(c) for c in self.generated], "real": [int(c) for c in self.real],
                "class_names": list(self.class_names), "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict) -> Coverage:
        """Back from :meth:`to_dict` (a coverage.json); GenlabError when the histograms are not there."""
        try:
            generated = np.asarray(data["generated"], dtype=np.int64)
            real = np.asarray(data["real"], dtype=np.int64)
        except (KeyError, TypeError, ValueError):
            raise GenlabError("the coverage numbers hold no class histograms (written by an older genlab); "
                              "run `genlab coverage RUN` again") from None
        if generated.shape != real.shape or generated.ndim != 1:
            raise GenlabError(f"the coverage histograms differ in shape: {generated.shape} vs {real.shape}")
        names = [str(n) for n in data.get("class_names") or range(len(generated))]
        return cls(generated=generated, real=real, class_names=names, threshold=float(data.get("threshold", 0.1)),
                   source=str(data.get("source", "")))


def compare(generated_pred, real_pred, num_classes: int, class_names: Sequence[str] = (),
            threshold: float = 0.1, source: str = "") -> Coverage:
    """Two arrays of predicted (or true) class ids -> a :class:`Coverage`."""
    names = list(class_names) or [str(k) for k in range(num_classes)]
    return Coverage(generated=class_histogram(generated_pred, num_classes),
                    real=class_histogram(real_pred, num_classes),
                    class_names=names, threshold=threshold, source=source)


def predict(predictor: Predictor, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    out = [np.asarray(predictor(images[i:i + batch_size])).reshape(-1) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def find_predictor(run, train: bool = False) -> tuple[Predictor | None, str]:
    """The metrics package's classifier extractor for the run's dataset as a :data:`Predictor`, or (None, why).

    With ``train`` a missing classifier is trained once (a few minutes on a CPU) and cached; without, only a
    cached one is used. Problems are returned as the reason, never raised, so callers can skip coverage.
    """
    try:
        ext = classifier_extractor(dataset=run.cfg.data, train=train, device=run.device)
    except GenlabError as e:
        return None, str(e)
    if not ext.num_classes:
        return None, f"the classifier extractor for {run.cfg.data.name} has no class head"

    def predict(images: torch.Tensor) -> torch.Tensor:
        return ext.features(images)[1].argmax(1)

    acc = ext.info.get("test_accuracy")
    about = f"classifier extractor {ext.hash[:12]}" + (f", test accuracy {acc:.1%}" if acc else "")
    return predict, about


def mode_coverage(run, n: int = 2000, seed: int = 0, predictor: Predictor | None = None,
                  split: str = "test", real_limit: int = 2000, threshold: float = 0.1) -> Coverage:
    """Class histogram of ``n`` generated images vs ``real_limit`` real ones of ``split``.

    ``predictor`` defaults to the metrics package's classifier (see :func:`find_predictor`); without one a
    GenlabError says why. Real images are classified by the same predictor, not by their labels, so a
    classifier's bias shows on both sides.
    """
    source = "custom predictor"
    if predictor is None:
        predictor, source = find_predictor(run, train=False)
        if predictor is None:
            raise GenlabError(f"mode coverage needs a class predictor: {source}")
    data = load_dataset(run.cfg.data, split=split)
    if not data.labeled:
        raise GenlabError(f"dataset {run.cfg.data.name} has no classes; mode coverage needs labeled data")
    if real_limit and real_limit < len(data):
        data = data.subset(real_limit)
    gen = predict(predictor, run.sampler(seed)(n))
    real = predict(predictor, to_float(data.images))
    return compare(gen, real, data.num_classes, data.class_names, threshold, source)
