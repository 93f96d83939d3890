"""Feature extractors, by CLI name: ``inception`` (standard FID Inception-v3) and ``classifier`` (a compact
CNN genlab trains per labeled dataset; works offline). See ``base.py`` for the input contract."""
from genlab.metrics.features import classifier, inception_fid  # noqa: F401  (registration)
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, get_extractor, weights_hash
from genlab.metrics.features.classifier import TrainedClassifier, fit_classifier, train_classifier
from genlab.metrics.features.inception_fid import find_inception_weights

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureExtractor",
    "TrainedClassifier",
    "find_inception_weights",
    "fit_classifier",
    "get_extractor",
    "train_classifier",
    "weights_hash",
]
