"""Evaluation metrics as pure, cached stages: images -> features -> statistics -> value.

    from genlab.metrics import evaluate, DatasetRef
    result = evaluate(sample_fn, 10_000, DatasetRef("fashion-mnist", "test", 28, 1), "classifier")
    result["fid"], result["kid"]["mean"], result["protocol"]["extractor_hash"]

- pure functions on features: ``frechet_distance``, ``kernel_inception_distance``, ``inception_score``,
  ``prdc``, ``class_coverage`` (float64; tested against independent references);
- ``FEATURE_EXTRACTORS`` (``inception``, ``classifier``) and ``get_extractor``;
- stages: ``compute_features`` -> ``FeatureStats.from_features``; cached ``reference_stats`` (refstats.py);
- ``METRICS`` (``fid``, ``kid``, ``is``, ``pr``, ``coverage``), ``evaluate``, ``evaluate_folder``;
- ``Collective`` / ``SINGLE_PROCESS``: what ``evaluate(collective=...)`` needs to run split over processes.
"""
from genlab.metrics.class_coverage import ClassCoverageResult, class_coverage, class_histogram
from genlab.metrics.collective import SINGLE_PROCESS, Collective, SingleProcess
from genlab.metrics.evaluate import evaluate, evaluate_features, evaluate_folder, sample_features
from genlab.metrics.features import (
    FEATURE_EXTRACTORS,
    FeatureExtractor,
    fit_classifier,
    get_extractor,
    train_classifier,
    weights_hash,
)
from genlab.metrics.fid import fid_from_stats, frechet_distance, frechet_distance_sqrtm
from genlab.metrics.inception_score import ISResult, inception_score
from genlab.metrics.kid import KIDResult, kernel_inception_distance, mmd2_unbiased
from genlab.metrics.prdc import PRDCResult, prdc
from genlab.metrics.reference import DatasetRef
from genlab.metrics.refstats import compute_features, iter_batches, reference_stats
from genlab.metrics.stats import Features, FeatureStats, FeatureWarning
from genlab.metrics.suite import DEFAULT_METRICS, METRICS, EvalOptions, check_metrics, flatten_results

__all__ = [
    "ClassCoverageResult",
    "Collective",
    "DEFAULT_METRICS",
    "DatasetRef",
    "EvalOptions",
    "FEATURE_EXTRACTORS",
    "FeatureExtractor",
    "FeatureStats",
    "FeatureWarning",
    "Features",
    "ISResult",
    "KIDResult",
    "METRICS",
    "PRDCResult",
    "SINGLE_PROCESS",
    "SingleProcess",
    "check_metrics",
    "class_coverage",
    "class_histogram",
    "compute_features",
    "evaluate",
    "evaluate_features",
    "evaluate_folder",
    "fid_from_stats",
    "fit_classifier",
    "flatten_results",
    "frechet_distance",
    "frechet_distance_sqrtm",
    "get_extractor",
    "inception_score",
    "iter_batches",
    "kernel_inception_distance",
    "mmd2_unbiased",
    "prdc",
    "reference_stats",
    "sample_features",
    "train_classifier",
    "weights_hash",
]
