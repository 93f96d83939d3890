"""Does the condition hold? Metrics of class-conditional generators (and text ones through their class captions).

Every function takes the class each generated image was asked for (``generated_labels``), so they apply to any
model whose sampler reports its labels (``genlab.sampling.Sampler.drawn_labels``):

- ``intra_class_fid`` (``ifid``): the FID of each class's generated images against that class's real images,
  and their mean (Miyato and Koyama 2018; the mean over the classes present in both sets);
- ``class_accuracy`` (``class_acc``): the share of generated images that the dataset's classifier (the
  extractor's logits) puts in the class they were asked for, overall and per class; chance is 1/K;
- ``classification_accuracy_score`` (``cas``, Ravuri and Vinyals 2019): a fresh compact classifier
  (``genlab.metrics.features.classifier.fit_classifier``) trained on generated images only, with the asked
  classes as labels, and tested on real images. High when the generated classes are both right and diverse.

Per-class results are keyed by the class index as a string ("0", "1", ...); the protocol carries the names.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from genlab.data.base import ImageData, to_float
from genlab.errors import GenlabError
from genlab.metrics.features.classifier import fit_classifier
from genlab.metrics.fid import fid_from_stats
from genlab.metrics.stats import FeatureStats, FeatureWarning

IFID = "ifid"
CLASS_ACC = "class_acc"
CAS = "cas"


def _labels(labels: Any, n: int, what: str) -> np.ndarray:
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(lab) != n:
        raise GenlabError(f"{len(lab)} {what} labels for {n} rows")
    if len(lab) and lab.min() < 0:
        raise GenlabError(f"{what} labels must be class indices >= 0, got {lab.min()}")
    return lab


def intra_class_fid(generated: np.ndarray, generated_labels: Any, reference: np.ndarray,
                    reference_labels: Any) -> dict[str, Any]:
    """{"mean", "per_class": {k: fid}, "classes", "min_generated", "min_reference"}: FID per class present in
    both sets with at least 2 rows on each side. The per-class covariances come from far fewer rows than the
    overall FID's (about N/K): compare iFID only at equal sample counts."""
    gen_lab = _labels(generated_labels, len(generated), "generated")
    ref_lab = _labels(reference_labels, len(reference), "reference")
    per_class: dict[str, float] = {}
    n_gen, n_ref = [], []
    singular = False
    for k in np.unique(ref_lab):
        g, r = generated[gen_lab == k], reference[ref_lab == k]
        if len(g) < 2 or len(r) < 2:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FeatureWarning)
            value = fid_from_stats(FeatureStats.from_features(g), FeatureStats.from_features(r))
        singular = singular or any(issubclass(w.category, FeatureWarning) for w in caught)
        per_class[str(int(k))] = float(value)
        n_gen.append(len(g))
        n_ref.append(len(r))
    if not per_class:
        raise GenlabError("intra-class FID found no class with at least 2 generated and 2 reference images; "
                          "draw more samples")
    if singular:
        warnings.warn(f"intra-class FID: some classes have no more rows than the {generated.shape[1]}-d features "
                      f"(fewest: {min(n_gen)} generated, {min(n_ref)} reference); their covariances are singular "
                      "and their FIDs biased", FeatureWarning, stacklevel=2)
    return {"mean": float(np.mean(list(per_class.values()))), "per_class": per_class, "classes": len(per_class),
            "min_generated": int(min(n_gen)), "min_reference": int(min(n_ref))}


def class_accuracy(logits: np.ndarray, labels: Any, num_classes: int | None = None) -> dict[str, Any]:
    """{"accuracy", "per_class": {k: accuracy}, "chance"}: how often argmax(logits) is the asked class.

    ``num_classes``: the dataset's class count; the logits must have exactly that many columns (another
    extractor's classes, e.g. Inception's ImageNet ones, would make the number meaningless)."""
    lab = _labels(labels, len(logits), "generated")
    k = int(logits.shape[1])
    if num_classes is not None and k != num_classes:
        raise GenlabError(f"class_acc reads the class from the extractor's logits, which must be the dataset's "
                          f"{num_classes} classes; this extractor has {k} (use --features classifier)")
    if len(lab) and lab.max() >= k:
        raise GenlabError(f"generated labels go up to {lab.max()} but the extractor knows {k} classes")
    correct = np.asarray(logits).argmax(axis=1) == lab
    per_class = {str(int(c)): float(correct[lab == c].mean()) for c in np.unique(lab)}
    return {"accuracy": float(correct.mean()), "per_class": per_class, "chance": 1.0 / k}


@torch.inference_mode()
def _predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    model.eval()
    out = [model(to_float(images[i:i + batch_size]))[1].argmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def classification_accuracy_score(generated_images: torch.Tensor, generated_labels: Any, test: ImageData, *,
                                  epochs: int = 3, max_train: int = 5_000, seed: int = 0) -> dict[str, Any]:
    """{"accuracy", "per_class", "train_images", "epochs"}: CAS of uint8 ``generated_images`` (N, C, H, W).

    Budget: at most ``max_train`` generated images (a seeded subset), ``epochs`` epochs of the compact
    classifier's recipe (batch 128, one-cycle Adam, shifts, one thread); tested on all of ``test``."""
    if not test.labeled:
        raise GenlabError("CAS tests on labeled real images; the reference has no labels")
    if tuple(generated_images.shape[1:]) != tuple(test.images.shape[1:]):
        raise GenlabError(f"CAS trains on generated images of shape {tuple(generated_images.shape[1:])} and tests "
                          f"on real ones of shape {tuple(test.images.shape[1:])}; they must match")
    lab = _labels(generated_labels, len(generated_images), "generated")
    if len(lab) and lab.max() >= test.num_classes:
        raise GenlabError(f"generated labels go up to {lab.max()} but the reference has {test.num_classes} classes")
    if len(lab) > max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(lab), max_train, replace=False))
        generated_images, lab = generated_images[torch.from_numpy(keep)], lab[keep]
    train = ImageData(images=generated_images, labels=torch.from_numpy(lab), class_names=list(test.class_names),
                      name="generated")
    model = fit_classifier(train, epochs=epochs, batch_size=min(128, len(lab)), seed=seed)
    pred = _predict(model, test.images)
    assert test.labels is not None, "the test split is labeled"
    truth = test.labels.numpy()
    correct = pred == truth
    per_class = {str(int(c)): float(correct[truth == c].mean()) for c in np.unique(truth)}
    return {"accuracy": float(correct.mean()), "per_class": per_class, "train_images": int(len(lab)),
            "epochs": int(epochs)}
