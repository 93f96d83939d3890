"""Feature extractors, by CLI name: ``inception`` (standard FID Inception-v3), ``classifier`` (a compact
CNN genlab trains per labeled dataset; works offline), ``dinov2-vitl14`` / ``dinov2-vitb14`` / ``dinov2-vits14``
(DINOv2 CLS features, FD_DINOv2; no classifier head) and ``clip-vitl14-336`` (CLIP image embeddings, CMMD's).
See ``base.py`` for the input contract."""
from genlab.metrics.features import classifier, clip, dinov2, inception_fid  # noqa: F401  (registration)
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, get_extractor, weights_hash
from genlab.metrics.features.classifier import TrainedClassifier, fit_classifier, train_classifier
from genlab.metrics.features.clip import find_clip_weights
from genlab.metrics.features.dinov2 import find_dinov2_weights
from genlab.metrics.features.inception_fid import find_inception_weights

__all__ = [
    "FEATURE_EXTRACTORS",
    "FeatureExtractor",
    "TrainedClassifier",
    "find_clip_weights",
    "find_dinov2_weights",
    "find_inception_weights",
    "fit_classifier",
    "get_extractor",
    "train_classifier",
    "weights_hash",
]
