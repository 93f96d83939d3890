from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.image.inception import InceptionScore

from genlab.metrics.inception_score import inception_score

from .test_fid import Passthrough


def test_confident_and_uniform_over_classes_gives_k():
    k = 10
    logits = np.full((1000, k), -50.0)
    logits[np.arange(1000), np.arange(1000) % k] = 50.0
    r = inception_score(logits, splits=10)
    assert r.mean == pytest.approx(k, rel=1e-6) and r.std == pytest.approx(0, abs=1e-6)


def test_one_class_or_uninformative_gives_one():
    assert inception_score(np.tile([[9.0, 0.0, 0.0]], (100, 1)), splits=5).mean == pytest.approx(1.0)
    assert inception_score(probs=np.full((100, 4), 0.25), splits=5).mean == pytest.approx(1.0)


def test_logits_and_probs_agree():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 7)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score(logits).mean == pytest.approx(inception_score(probs=probs).mean, rel=1e-10)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save all extracted features")
def test_agrees_with_torchmetrics():
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(500, 12)) * 2)
    tm = InceptionScore(feature=Passthrough(12), splits=5)
    tm.update(logits)
    torch.manual_seed(3)
    perm = torch.randperm(500)  # the permutation torchmetrics draws in compute()
    torch.manual_seed(3)
    mean, std = tm.compute()
    ours = inception_score(logits[perm].numpy(), splits=5)
    assert ours.mean == pytest.approx(float(mean), rel=1e-4)
    # torchmetrics reports the sample std (n - 1), we report the population std (n), as the original code
    assert ours.std * np.sqrt(5 / 4) == pytest.approx(float(std), rel=1e-4)
