"""``METRICS``: the metric names the CLI accepts, each a pure function of (generated, reference) statistics.

Result values (stable keys, JSON-able):
- ``fid``: float (lower is better);
- ``kid``: {"mean", "std", "subsets", "subset_size"} (lower is better);
- ``is``: {"mean", "std", "splits"} (higher is better; from the extractor's logits);
- ``pr``: {"precision", "recall", "density", "coverage", "k"} (k-NN manifolds, higher is better);
- ``coverage``: {"histogram", "entropy", "entropy_normalized", "kl_to_real", "classes_covered",
  "classes_in_real", "num_classes"} (class coverage of generated samples by predicted class);
- ``ifid``: {"mean", "per_class", "classes", "min_generated", "min_reference"} (intra-class FID, lower is better);
- ``class_acc``: {"accuracy", "per_class", "chance"} (generated images classified as the asked class);
- ``cas``: {"accuracy", "per_class", "train_images", "epochs"} (classifier trained on generated, tested on real).
``flatten_results`` turns them into "kid/mean"-style scalars for JSONL and TensorBoard.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genlab.errors import GenlabError
from genlab.metrics.class_coverage import COVERAGE, class_coverage
from genlab.metrics.conditional import (
    CAS,
    CLASS_ACC,
    IFID,
    class_accuracy,
    classification_accuracy_score,
    intra_class_fid,
)
from genlab.metrics.fid import FID, fid_from_stats
from genlab.metrics.inception_score import IS, inception_score
from genlab.metrics.kid import KID, kernel_inception_distance
from genlab.metrics.prdc import PR, prdc
from genlab.metrics.stats import FeatureStats
from genlab.registry import Registry

DEFAULT_METRICS = (FID, KID, IS, PR, COVERAGE)


@dataclass(frozen=True)
class EvalOptions:
    """Metric settings; all go into the result's protocol."""

    kid_subsets: int = 100  # KID: number of random subsets
    kid_subset_size: int = 1000  # KID: rows per subset (capped by the smaller set)
    is_splits: int = 10  # IS: chunks the samples are split into
    pr_k: int = 3  # precision/recall/density/coverage: k of the k-NN radii
    pr_max_samples: int = 10_000  # PR: both sets are subsampled (seeded) to min(this, N_gen, N_ref rows)
    coverage_min_share: float = 0.1  # class coverage: a class counts when >= this x its real share
    # CAS budget: ~20 s of one CPU core at 28px (5 epochs of 10k images measured 64 s; cost ~ epochs x images)
    cas_epochs: int = 3  # CAS: epochs of the compact classifier trained on generated images
    cas_max_train: int = 5_000  # CAS: at most this many generated images train it (a seeded subset)
    seed: int = 0  # subset draws (KID, PR)


@dataclass(frozen=True)
class MetricInputs:
    """What a metric sees. The first four are always there; the optional ones only when a chosen metric
    ``needs`` them (the caller fills them; ``evaluate_features`` refuses a metric whose needs are missing)."""

    generated: FeatureStats  # with all raw rows and the class histogram
    generated_logits: np.ndarray | None
    reference: FeatureStats  # raw rows capped at reference_stats.REFERENCE_ROWS
    options: EvalOptions
    train: FeatureStats | None = None  # the training split's statistics (rows capped): memorization
    reconstructed: FeatureStats | None = None  # features of the reference images' reconstructions: rFID
    generated_labels: np.ndarray | None = None  # (N,) int: the class each generated image was asked for
    reference_labels: np.ndarray | None = None  # (M,) int: the true class of each reference feature row
    generated_images: Any = None  # (N, C, H, W) uint8 tensor of the generated images (CAS trains on them)
    reference_images: Any = None  # the reference's labeled uint8 ImageData (CAS tests on it)


#: the optional ``MetricInputs`` fields a metric may name in ``Metric.needs``
OPTIONAL_INPUTS = ("train", "reconstructed", "generated_labels", "reference_labels", "generated_images",
                   "reference_images")


@dataclass(frozen=True)
class Metric:
    name: str
    summary: str  # one line for --help
    compute: Callable[[MetricInputs], Any]
    needs: tuple[str, ...] = ()  # optional MetricInputs fields it reads (OPTIONAL_INPUTS)


METRICS: Registry[Metric] = Registry("metric")


def _register(name: str, summary: str, needs: tuple[str, ...] = ()
              ) -> Callable[[Callable[[MetricInputs], Any]], Callable[[MetricInputs], Any]]:
    unknown = set(needs) - set(OPTIONAL_INPUTS)
    if unknown:
        raise ValueError(f"metric {name!r} needs unknown inputs {sorted(unknown)}; known: {OPTIONAL_INPUTS}")

    def deco(fn: Callable[[MetricInputs], Any]) -> Callable[[MetricInputs], Any]:
        METRICS.add(name, Metric(name, summary, fn, tuple(needs)))
        return fn

    return deco


def _rows(stats: FeatureStats, side: str) -> np.ndarray:
    if stats.features is None:
        raise GenlabError(f"the {side} statistics keep no raw feature rows, which KID and PR need")
    return stats.features


@_register(FID, "Frechet distance between feature Gaussians (lower is better)")
def _fid(x: MetricInputs) -> float:
    return fid_from_stats(x.generated, x.reference)


@_register(KID, "Kernel Inception Distance, unbiased MMD^2 with a cubic kernel (lower is better)")
def _kid(x: MetricInputs) -> dict[str, Any]:
    o = x.options
    r = kernel_inception_distance(_rows(x.generated, "generated"), _rows(x.reference, "reference"),
                                  subsets=o.kid_subsets, subset_size=o.kid_subset_size, seed=o.seed)
    return asdict(r)


@_register(IS, "Inception Score from the extractor's class probabilities (higher is better)")
def _is(x: MetricInputs) -> dict[str, Any]:
    if x.generated_logits is None:
        raise GenlabError("IS needs an extractor with a classifier head")
    return asdict(inception_score(x.generated_logits, splits=x.options.is_splits))


@_register(PR, "k-NN precision, recall, density and coverage (higher is better)")
def _pr(x: MetricInputs) -> dict[str, Any]:
    gen, ref = _rows(x.generated, "generated"), _rows(x.reference, "reference")
    m = min(len(gen), len(ref), x.options.pr_max_samples)
    rng = np.random.default_rng(x.options.seed)
    if len(gen) > m:
        gen = gen[np.sort(rng.choice(len(gen), m, replace=False))]
    if len(ref) > m:
        ref = ref[np.sort(rng.choice(len(ref), m, replace=False))]
    return asdict(prdc(ref, gen, k=x.options.pr_k))


@_register(COVERAGE, "class coverage of generated samples: histogram, entropy, KL to real, classes covered")
def _coverage(x: MetricInputs) -> dict[str, Any]:
    if x.generated.class_hist is None:
        raise GenlabError("class coverage needs an extractor with a classifier head")
    return asdict(class_coverage(x.generated.class_hist, x.reference.class_hist, x.options.coverage_min_share))


@_register(IFID, "intra-class FID: FID per class against that class's real images, and the mean (lower is "
                 "better; conditional runs)", needs=("generated_labels", "reference_labels"))
def _ifid(x: MetricInputs) -> dict[str, Any]:
    return intra_class_fid(_rows(x.generated, "generated"), x.generated_labels, _rows(x.reference, "reference"),
                           x.reference_labels)


@_register(CLASS_ACC, "share of generated images the dataset's classifier puts in the asked class (higher is "
                      "better; conditional runs)", needs=("generated_labels", "reference_labels"))
def _class_acc(x: MetricInputs) -> dict[str, Any]:
    if x.generated_logits is None:
        raise GenlabError("class_acc needs an extractor with a classifier head (--features classifier)")
    return class_accuracy(x.generated_logits, x.generated_labels, int(np.max(x.reference_labels)) + 1)


@_register(CAS, "classification accuracy score: a classifier trained on generated images, tested on real "
                "ones (higher is better; conditional runs)", needs=("generated_labels", "generated_images",
                                                                    "reference_images"))
def _cas(x: MetricInputs) -> dict[str, Any]:
    o = x.options
    return classification_accuracy_score(x.generated_images, x.generated_labels, x.reference_images,
                                         epochs=o.cas_epochs, max_train=o.cas_max_train, seed=o.seed)


#: the metrics that need the class each generated image was asked for (conditional runs only)
CONDITIONAL_METRICS = (IFID, CLASS_ACC, CAS)


def needed_inputs(names: Any) -> set[str]:
    """The optional inputs the chosen metrics need (the caller computes only those)."""
    return {need for n in check_metrics(names) for need in METRICS.get(n).needs}


def check_metrics(names: Any) -> tuple[str, ...]:
    """Validated metric names (a comma-separated string or a sequence); unknown names list the choices."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = tuple(dict.fromkeys(names))
    for n in out:
        METRICS.get(n)
    if not out:
        raise GenlabError(f"no metric chosen; choose from: {', '.join(METRICS.names())}")
    return out


def flatten_results(results: dict[str, Any], sep: str = "/") -> dict[str, float]:
    """Scalars only, nested keys joined (``kid/mean``, ``pr/precision``); lists and the protocol are left out."""
    flat: dict[str, float] = {}
    for key, value in results.items():
        if key == "protocol":
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    flat[f"{key}{sep}{sub}"] = float(v)
        elif isinstance(value, (int, float)):
            flat[key] = float(value)
    return flat
