"""copies (memorization) and its exact nearest-neighbour search, against brute force and through evaluate()."""
from __future__ import annotations

import numpy as np
import pytest

from genlab.data.base import ImageData
from genlab.errors import GenlabError
from genlab.metrics import DatasetRef, evaluate, evaluate_folder
from genlab.metrics.evaluate import train_split_of
from genlab.metrics.memorization import COPY_RULE, copies, nearest

from .conftest import blob_images
from .test_evaluate import FAST, sampler_from


def brute(q: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((q[:, None, :].astype(np.float64) - b[None, :, :].astype(np.float64)) ** 2).sum(-1))


def test_nearest_is_exact_against_brute_force():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(700, 24)).astype(np.float32) + 50.0  # far from 0: the float32 expansion cancels here
    queries = np.concatenate([rng.normal(size=(900, 24)).astype(np.float32) + 50.0,
                              base[:40], base[:40] + 1e-4])  # exact copies and near-copies
    d, i = nearest(queries, base, k=3)
    full = brute(queries, base)
    want = np.argsort(full, axis=1, kind="stable")[:, :3]
    assert np.array_equal(i, want)
    np.testing.assert_allclose(d, np.take_along_axis(full, want, 1), rtol=1e-12, atol=1e-12)
    assert np.all(d[900:940, 0] == 0.0) and np.array_equal(i[900:940, 0], np.arange(40))
    d_self, i_self = nearest(base, base, k=1, exclude_self=True)
    np.fill_diagonal(full := brute(base, base), np.inf)
    assert np.array_equal(i_self[:, 0], full.argmin(1))
    np.testing.assert_allclose(d_self[:, 0], full.min(1), rtol=1e-12)


def test_copy_rule_against_a_direct_loop():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(300, 8))
    gen = np.concatenate([rng.normal(size=(200, 8)), train[:50] + rng.normal(scale=0.01, size=(50, 8))])
    real = rng.normal(size=(120, 8))
    tt = brute(train, train)
    np.fill_diagonal(tt, np.inf)
    radius = tt.min(1)

    def rate(x):
        dx = brute(x, train)
        j = dx.argmin(1)
        return float(np.mean(dx[np.arange(len(x)), j] <= radius[j]))

    r = copies(gen, train, real)
    assert r.copy_rate == pytest.approx(rate(gen), abs=1e-12) and r.real_rate == pytest.approx(rate(real), abs=1e-12)
    assert r.copy_rate > r.real_rate + 0.1  # the 50 near-copies (a fifth of the samples) count
    assert (r.num_generated, r.num_real, r.num_train, r.threshold) == (250, 120, 300, COPY_RULE)


def test_training_images_are_copies_and_fresh_real_images_score_like_real_ones(extractor):
    train = ImageData(images=blob_images(500, seed=11), name="blobs", split="train")
    reference = ImageData(images=blob_images(500, seed=12), name="blobs", split="test")
    memorizer = evaluate(sampler_from(train.images), 500, reference, extractor, metrics="copies", options=FAST,
                         train=train)
    fresh = evaluate(sampler_from(blob_images(500, seed=13)), 500, reference, extractor, metrics="fid,copies",
                     options=FAST, train=train)
    c, f = memorizer["copies"], fresh["copies"]
    assert c["copy_rate"] > 0.97
    assert c["real_rate"] == f["real_rate"] < 0.6  # the baseline does not depend on the generator
    assert abs(f["copy_rate"] - f["real_rate"]) < 0.1  # 500 samples each: binomial std ~ 0.03
    assert f["num_train"] == 500 and memorizer["protocol"]["train"]["rows_searched"] == 500
    assert "train_reference" in memorizer["protocol"]["seconds"]


def test_copies_without_training_images_is_one_clear_error(extractor, tmp_path):
    reference = ImageData(images=blob_images(50, seed=12), name="blobs", split="test")
    with pytest.raises(GenlabError, match="training images.*pass train="):
        evaluate(sampler_from(blob_images(50, seed=13)), 50, reference, extractor, metrics="copies")
    with pytest.raises(GenlabError, match="training images"):
        evaluate_folder(tmp_path, reference, extractor, metrics="fid,copies")
    test = DatasetRef("fashion-mnist", "test", 28, 1, root="/data", limit=500)
    assert train_split_of(test) == DatasetRef("fashion-mnist", "train", 28, 1, root="/data", limit=500)
    assert train_split_of(reference) is None and train_split_of(tmp_path) is None
