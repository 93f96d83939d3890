"""Feature extractors, by CLI name: ``inception`` (standard FID Inception-v3), ``classifier`` (a compact
CNN genlab trains per labeled dataset; works offline) and ``dinov2-vits14`` / ``dinov2-vitb14`` (DINOv2
CLS features, FD_DINOv2; no classifier head). See ``base.py`` for the input contract."""
from genlab.metrics.features import classifier, dinov2, inception_fid  # noqa: F401  (registration)
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, get_extractor, weights_hash
from genlab.metrics.features.classifier import TrainedClassifier, fit_classifier, train_classifier
from genlab.metrics.features.dinov2 import find_dinov2_weights
from genlab.metrics.features.inception_fid import find_inception_weights

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureExtractor",
    "TrainedClassifier",
    "find_dinov2_weights",
    "find_inception_weights",
    "fit_classifier",
    "get_extractor",
    "train_classifier",
    "weights_hash",
]
