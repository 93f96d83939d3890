"""``METRICS``: the metric names the CLI accepts, each a pure function of (generated, reference) statistics.

Result values (stable keys, JSON-able):
- ``fid``: float (lower is better);
- ``kid``: {"mean", "std", "subsets", "subset_size"} (lower is better);
- ``is``: {"mean", "std", "splits"} (higher is better; from the extractor's logits);
- ``pr``: {"precision", "recall", "density", "coverage", "k"} (k-NN manifolds, higher is better);
- ``coverage``: {"histogram", "entropy", "entropy_normalized", "kl_to_real", "classes_covered",
  "classes_in_real", "num_classes"} (class coverage of generated samples by predicted class);
- ``fid_inf``: float, FID extrapolated to infinitely many samples (lower is better; its fit points go into
  the protocol's ``details``);
- ``ci95``: {"fid_low", "fid_high", "fid_std", "kid_low", "kid_high", "kid_std", "resamples", "level",
  "kid_rows"} (bootstrap intervals of FID and KID over resamples of the generated rows).
- ``ifid``: {"mean", "per_class", "classes", "min_generated", "min_reference"} (intra-class FID, lower is better);
- ``class_acc``: {"accuracy", "per_class", "chance"} (generated images classified as the asked class);
- ``cas``: {"accuracy", "per_class", "train_images", "epochs"} (classifier trained on generated, tested on real).
- ``copies``: {"copy_rate", "real_rate", "num_generated", "num_real", "num_train", "threshold"} (memorization:
  share of samples closer to a training image than its own nearest training neighbour, and the same share for
  the real reference rows; needs ``train``; see ``genlab.metrics.memorization``);
- ``rfid``: float, FID of the reference images' reconstructions (encoder mean -> decoder) against the reference
  (VAE family; needs ``reconstructed``);
- ``recon``: {"mse", "mae", "num_images", "units"} mean per-pixel reconstruction error of the reference images,
  pixels in [-1, 1] (needs ``reconstruction_error``).
- ``fd_dinov2``: float, the Frechet distance of DINOv2 ViT-L/14 features (FD_DINOv2, as dgm-eval and EDM2 report
  it; lower is better), whatever ``--features`` the other metrics use (``EvalOptions.fd_dinov2_features``);
- ``cmmd``: float, CMMD: 1000 x the unbiased MMD^2 of CLIP ViT-L/14@336 embeddings under a Gaussian kernel of
  bandwidth 10 (lower is better; ``EvalOptions.cmmd_*``);
- ``vendi``: {"score", "real_score", "q", "num_generated", "num_real"} the Vendi score (diversity of the
  generated set alone, cosine similarity of the extractor's features; higher is more diverse) and that of the
  reference rows (None against a statistics file).
``fd_dinov2`` and ``cmmd`` have features of their own (``Metric.extractor``): the evaluation runs their
extractor over the same images besides the main one, and ``ci95`` adds their intervals
(``fd_dinov2_low``/``_high``/``_std``, ``cmmd_low``/...) when they are chosen with it.
``flatten_results`` turns them into "kid/mean"-style scalars for JSONL and TensorBoard.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from genlab.errors import GenlabError
from genlab.metrics.class_coverage import COVERAGE, class_coverage
from genlab.metrics.cmmd import CMMD, ESTIMATORS, SCALE, SIGMA, mmd2_rbf, rbf_kernel
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
from genlab.metrics.memorization import COPIES, copies
from genlab.metrics.prdc import PR, prdc
from genlab.metrics.protocols import GENLAB, PROTOCOLS
from genlab.metrics.stats import FeatureStats
from genlab.metrics.uncertainty import (
    CI95,
    FID_INF,
    bootstrap_fid,
    bootstrap_intervals,
    bootstrap_mmd2,
    fid_infinity,
    interval,
)
from genlab.metrics.vendi import VENDI, vendi_score
from genlab.registry import Registry

DEFAULT_METRICS = (FID, KID, IS, PR, COVERAGE, FID_INF, CI95)


@dataclass(frozen=True)
class EvalOptions:
    """Metric settings; all go into the result's protocol."""

    kid_subsets: int = 100  # KID: number of random subsets
    kid_subset_size: int = 1000  # KID: rows per subset (capped by the smaller set)
    is_splits: int = 10  # IS: chunks the samples are split into
    pr_k: int = 3  # precision/recall/density/coverage: k of the k-NN radii
    pr_max_samples: int = 10_000  # PR: both sets are subsampled (seeded) to min(this, N_gen, N_ref rows)
    coverage_min_share: float = 0.1  # class coverage: a class counts when >= this x its real share
    seed: int = 0  # subset draws (KID, PR), fid_inf's subsets and the bootstrap's resamples
    fid_inf_points: int = 15  # FD-infinity: sample counts in the fit of FID against 1/N (Chong & Forsyth: 15)
    fid_inf_min: int = 5000  # FD-infinity: the smallest count (capped at N // 2); the largest is N
    ci_resamples: int = 50  # ci95: bootstrap resamples of the generated rows (cost ~ resamples x N x D^2)
    ci_level: float = 0.95  # ci95: the interval's coverage
    ci_kid_rows: int = 2000  # ci95: rows per side behind the KID interval (kernel matrices of this size)
    # CAS budget: ~20 s of one CPU core at 28px (5 epochs of 10k images measured 64 s; cost ~ epochs x images)
    cas_epochs: int = 3  # CAS: epochs of the compact classifier trained on generated images
    cas_max_train: int = 5_000  # CAS: at most this many generated images train it (a seeded subset)
    # -- comparing with published numbers (genlab.metrics.protocols, genlab.metrics.statsfile)
    protocol: str = GENLAB  # a PROTOCOLS name: genlab | paper (checked against the published tables' settings)
    resize: str | None = None  # the main extractor's resize: legacy (pytorch-fid) | clean (clean-fid); None: its own
    reference_stats: str | None = None  # a mu/sigma .npz (pytorch-fid, TTUR, clean-fid, StudioGAN) replacing the
    #                                     main extractor's reference statistics (FID, fid_inf; its sha256 recorded)
    # -- metrics with features of their own
    fd_dinov2_features: str = "dinov2-vitl14"  # fd_dinov2: the DINOv2 backbone (dinov2-vits14/-vitb14 smaller)
    fd_dinov2_weights: str | None = None  # fd_dinov2: its weights file (None: $GENLAB_DINOV2_WEIGHTS, cache, download)
    cmmd_features: str = "clip-vitl14-336"  # cmmd: the CLIP image tower
    cmmd_weights: str | None = None  # cmmd: its weights file (None: $GENLAB_CLIP_WEIGHTS, the cache, a download)
    cmmd_sigma: float = SIGMA  # cmmd: bandwidth of the Gaussian kernel (the paper's: 10)
    cmmd_scale: float = SCALE  # cmmd: the factor MMD^2 is multiplied by (the paper's: 1000)
    cmmd_estimator: str = "unbiased"  # cmmd: unbiased | biased (diagonals kept: the paper's reference code)
    vendi_q: float = 1.0  # vendi: the order of the entropy (1: Shannon, as the paper reports)

    def __post_init__(self) -> None:
        PROTOCOLS.get(self.protocol)  # a checked name
        if self.cmmd_estimator not in ESTIMATORS:
            raise GenlabError(f"cmmd_estimator {self.cmmd_estimator!r}: choose from {', '.join(ESTIMATORS)}")
        for name in ("cmmd_sigma", "cmmd_scale", "vendi_q"):
            if not getattr(self, name) > 0:
                raise GenlabError(f"{name}={getattr(self, name)} is not allowed: a positive number")
        if not self.fd_dinov2_features.startswith("dinov2"):
            raise GenlabError(f"fd_dinov2_features {self.fd_dinov2_features!r}: a DINOv2 extractor (dinov2-vitl14, "
                              "dinov2-vitb14 or dinov2-vits14)")


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
    reconstruction_error: dict[str, Any] | None = None  # {"mse", "mae", "num_images", "units"}: recon
    #: the inputs of the chosen metrics that have features of their own (``Metric.extractor``), by metric name
    #: (``ci95`` bootstraps them)
    companions: dict[str, MetricInputs] = field(default_factory=dict)


#: the optional ``MetricInputs`` fields a metric may name in ``Metric.needs``
OPTIONAL_INPUTS = ("train", "reconstructed", "generated_labels", "reference_labels", "generated_images",
                   "reference_images", "reconstruction_error")
#: the inputs a model's reconstructions provide (the caller computes them only for models with an encoder)
RECONSTRUCTION_INPUTS = ("reconstructed", "reconstruction_error")
RFID, RECON = "rfid", "recon"
FD_DINOV2 = "fd_dinov2"


@dataclass(frozen=True)
class Detailed:
    """A metric value plus details for the protocol (``protocol["details"][name]``), e.g. a fit's points."""

    value: Any
    details: dict[str, Any]


#: a metric's own extractor: options -> (FEATURE_EXTRACTORS name, weights file or None)
OwnExtractor = Callable[[EvalOptions], tuple[str, "str | None"]]
#: a metric's bootstrap for ci95: (inputs, rng) -> (the values of the resamples, the value of the rows themselves)
Bootstrap = Callable[[MetricInputs, np.random.Generator], tuple[np.ndarray, float]]


@dataclass(frozen=True)
class Metric:
    name: str
    summary: str  # one line for --help
    compute: Callable[[MetricInputs], Any]
    needs: tuple[str, ...] = ()  # optional MetricInputs fields it reads (OPTIONAL_INPUTS)
    extractor: OwnExtractor | None = None  # features of its own, whatever the evaluation's (None: the evaluation's)
    bootstrap: Bootstrap | None = None  # its ci95 interval, for metrics with features of their own
    moments_only: bool = False  # needs no more of the reference than its mean and covariance (so it works
    #                             against a statistics file): fid, fid_inf; vendi (its real_score is then None)


METRICS: Registry[Metric] = Registry("metric")


def _register(name: str, summary: str, needs: tuple[str, ...] = (), **more: Any
              ) -> Callable[[Callable[[MetricInputs], Any]], Callable[[MetricInputs], Any]]:
    unknown = set(needs) - set(OPTIONAL_INPUTS)
    if unknown:
        raise ValueError(f"metric {name!r} needs unknown inputs {sorted(unknown)}; known: {OPTIONAL_INPUTS}")

    def deco(fn: Callable[[MetricInputs], Any]) -> Callable[[MetricInputs], Any]:
        METRICS.add(name, Metric(name, summary, fn, tuple(needs), **more))
        return fn

    return deco


def _rows(stats: FeatureStats, side: str) -> np.ndarray:
    if stats.features is None:
        raise GenlabError(f"the {side} statistics keep no raw feature rows, which KID and PR need")
    return stats.features


@_register(FID, "Frechet distance between feature Gaussians (lower is better)", moments_only=True)
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


@_register(FID_INF, "FD-infinity: FID extrapolated to infinitely many samples, Chong & Forsyth (lower is better)",
           moments_only=True)
def _fid_inf(x: MetricInputs) -> Detailed:
    o = x.options
    r = fid_infinity(_rows(x.generated, "generated"), x.reference.mu, x.reference.sigma,
                     points=o.fid_inf_points, min_count=o.fid_inf_min, seed=o.seed)
    return Detailed(r.value, {"counts": r.counts, "fid": r.fids, "slope": r.slope})


@_register(CI95, "bootstrap confidence intervals of FID and KID (and of fd_dinov2 and cmmd when chosen) over "
                 "resamples of the generated samples")
def _ci95(x: MetricInputs) -> dict[str, Any]:
    o = x.options
    r = bootstrap_intervals(_rows(x.generated, "generated"), _rows(x.reference, "reference"), x.reference.mu,
                            x.reference.sigma, resamples=o.ci_resamples, level=o.ci_level, seed=o.seed,
                            kid_rows=o.ci_kid_rows)
    out = asdict(r)
    for name, inputs in x.companions.items():  # after FID and KID: their draws stay as they were
        boot = METRICS.get(name).bootstrap
        if boot is None:
            continue
        values, full = boot(inputs, np.random.default_rng([o.seed, zlib.crc32(name.encode())]))
        out[f"{name}_low"], out[f"{name}_high"] = interval(values, full, o.ci_level)
        out[f"{name}_std"] = float(values.std(ddof=1))
    return out


def split_details(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values with each ``Detailed`` replaced by its value, {metric name: details})."""
    details = {k: v.details for k, v in values.items() if isinstance(v, Detailed)}
    return {k: (v.value if isinstance(v, Detailed) else v) for k, v in values.items()}, details


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
    if x.generated_labels is None or x.reference_labels is None:
        raise GenlabError("class_acc needs the asked labels of the generated images and the real ones")
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
@_register(COPIES, "memorization: share of samples nearer a training image than its nearest training neighbour, "
                   "vs the same share for real test images", needs=("train",))
def _copies(x: MetricInputs) -> dict[str, Any]:
    train = _rows(x.train, "train")  # type: ignore[arg-type]  # evaluate_features checked it is there
    return asdict(copies(_rows(x.generated, "generated"), train, x.reference.features))


@_register(RFID, "VAE family: FID of the reference images' reconstructions against the reference (lower is "
                 "better)", needs=("reconstructed",))
def _rfid(x: MetricInputs) -> float:
    return fid_from_stats(x.reconstructed, x.reference)  # type: ignore[arg-type]


@_register(RECON, "VAE family: mean per-pixel reconstruction error (mse, mae) of the reference images, pixels in "
                  "[-1, 1] (lower is better)", needs=("reconstruction_error",))
def _recon(x: MetricInputs) -> dict[str, Any]:
    return dict(x.reconstruction_error)  # type: ignore[arg-type]


def _fd_dinov2_boot(x: MetricInputs, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    return bootstrap_fid(_rows(x.generated, "generated"), x.reference.mu, x.reference.sigma,
                         x.options.ci_resamples, rng)


@_register(FD_DINOV2, "FD_DINOv2: Frechet distance of DINOv2 ViT-L/14 features, whatever --features (lower is better)",
           extractor=lambda o: (o.fd_dinov2_features, o.fd_dinov2_weights), bootstrap=_fd_dinov2_boot)
def _fd_dinov2(x: MetricInputs) -> float:
    return fid_from_stats(x.generated, x.reference)


def _cmmd_boot(x: MetricInputs, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """CMMD's interval as KID's: the resampled MMD^2 on seeded subsamples of ``ci_kid_rows`` rows per side."""
    o = x.options
    gen, ref = _rows(x.generated, "generated"), _rows(x.reference, "reference")
    m = min(len(gen), len(ref), o.ci_kid_rows)
    g = gen[np.sort(rng.choice(len(gen), m, replace=False))]
    r = ref[np.sort(rng.choice(len(ref), m, replace=False))]
    values, full = bootstrap_mmd2(g, r, o.ci_resamples, rng, kernel=lambda a, b: rbf_kernel(a, b, o.cmmd_sigma),
                                  biased=o.cmmd_estimator == "biased")
    return values * o.cmmd_scale, full * o.cmmd_scale


@_register(CMMD, "CMMD: MMD of CLIP ViT-L/14@336 embeddings, Gaussian kernel sigma 10, x1000 (lower is better)",
           extractor=lambda o: (o.cmmd_features, o.cmmd_weights), bootstrap=_cmmd_boot)
def _cmmd(x: MetricInputs) -> float:
    o = x.options
    return mmd2_rbf(_rows(x.generated, "generated"), _rows(x.reference, "reference"), sigma=o.cmmd_sigma,
                    scale=o.cmmd_scale, estimator=o.cmmd_estimator)


@_register(VENDI, "Vendi score: diversity of the generated samples alone, and of the real ones (higher is more "
                  "diverse)", moments_only=True)
def _vendi(x: MetricInputs) -> dict[str, Any]:
    q = x.options.vendi_q
    gen, real = _rows(x.generated, "generated"), x.reference.features
    return {"score": vendi_score(gen, q), "real_score": None if real is None else vendi_score(real, q), "q": q,
            "num_generated": len(gen), "num_real": 0 if real is None else len(real)}


def own_extractors(names: Any, options: EvalOptions) -> dict[str, tuple[str, str | None]]:
    """{metric name: (extractor name, weights)} of the chosen metrics that have features of their own."""
    return {n: METRICS.get(n).extractor(options) for n in check_metrics(names)  # type: ignore[misc]
            if METRICS.get(n).extractor is not None}


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
