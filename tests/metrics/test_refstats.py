"""Reference statistics: computed once per (reference, extractor hash), cached atomically, never mixed."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data.base import ImageData
from genlab.metrics import refstats as rs
from genlab.metrics.reference import DatasetRef

from .conftest import blob_images, make_random_extractor


class Counting:
    """Wraps an extractor and counts the images it was asked to process."""

    def __init__(self, ext):
        self.ext, self.images = ext, 0
        self.name, self.hash, self.variant, self.batch_size = ext.name, ext.hash, ext.variant, ext.batch_size
        self.feature_dim = ext.feature_dim

    def features(self, images):
        self.images += len(images)
        return self.ext.features(images)


def test_second_call_reuses_the_cache(real_data):
    ext = Counting(make_random_extractor(seed=0))
    first, desc1 = rs.reference_stats(real_data, ext)
    assert ext.images == len(real_data) and desc1["cached"] is False
    path = rs.refstats_path(rs.reference_identity(real_data)[0], ext)
    assert path.is_file() and path.parent.name == "refstats" and ext.hash in path.name
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temporary behind
    second, desc2 = rs.reference_stats(real_data, ext)
    assert ext.images == len(real_data) and desc2["cached"] is True  # nothing recomputed
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(first.features, second.features)


def test_other_extractor_hash_recomputes(real_data):
    a = Counting(make_random_extractor(seed=0))
    b = Counting(make_random_extractor(seed=1))  # same name, other weights -> other hash
    assert a.name == b.name and a.hash != b.hash
    sa, _ = rs.reference_stats(real_data, a)
    sb, _ = rs.reference_stats(real_data, b)
    assert b.images == len(real_data)
    assert not np.allclose(sa.mu, sb.mu)
    again, _ = rs.reference_stats(real_data, a)
    np.testing.assert_array_equal(again.mu, sa.mu)  # a's file was not overwritten by b


def test_file_with_a_different_key_is_never_used(real_data):
    ext = Counting(make_random_extractor(seed=0))
    rs.reference_stats(real_data, ext)
    path = rs.refstats_path(rs.reference_identity(real_data)[0], ext)
    payload = torch.load(path, weights_only=True)
    payload["key"]["extractor_hash"] = "0" * 16  # e.g. written by another extractor version
    payload["stats"]["mu"] += 5.0
    torch.save(payload, path)
    stats, desc = rs.reference_stats(real_data, ext)
    assert ext.images == 2 * len(real_data) and desc["cached"] is False
    assert np.abs(stats.mu).max() < 5.0


def test_changed_data_changes_the_key(real_data):
    other = ImageData(images=real_data.images.flip(0), name=real_data.name, split=real_data.split)
    assert rs.reference_identity(real_data)[0] != rs.reference_identity(other)[0]


def test_dataset_ref_key_and_cache(tiny_fmnist):
    ref = DatasetRef("fashion-mnist", "test", 16, 1, root=str(tiny_fmnist), verify=False)
    ext = Counting(make_random_extractor(seed=0))
    stats, desc = rs.reference_stats(ref, ext)
    assert stats.n == 64 and desc["split"] == "test" and stats.class_hist.sum() == 64
    rs.reference_stats(ref, ext)
    assert ext.images == 64
    key = rs.reference_identity(ref)[0]
    assert key.startswith("fashion-mnist-root") and "-test-16px-1ch" in key


@pytest.mark.filterwarnings("ignore::genlab.metrics.stats.FeatureWarning")
def test_folder_reference(tmp_path):
    images = blob_images(12, seed=3)
    for i, im in enumerate(images):
        Image.fromarray(im[0].numpy()).save(tmp_path / f"{i:03d}.png")
    ext = Counting(make_random_extractor(seed=0))
    stats, desc = rs.reference_stats(tmp_path, ext, resolution=16, channels=1)
    assert stats.n == 12 and desc["folder"] == str(tmp_path.resolve())
    direct = rs.compute_features(ext.ext, [images])
    np.testing.assert_allclose(stats.mu, direct.features.astype(np.float64).mean(0), rtol=1e-6)  # PNG is lossless
    rs.reference_stats(tmp_path, ext, resolution=16, channels=1)
    assert ext.images == 12
    Image.fromarray(images[0, 0].numpy()).save(tmp_path / "extra.png")  # the folder changed: recompute
    stats2, _ = rs.reference_stats(tmp_path, ext, resolution=16, channels=1)
    assert stats2.n == 13


def test_keeps_at_most_reference_rows(real_data, monkeypatch):
    monkeypatch.setattr(rs, "REFERENCE_ROWS", 100)
    stats, _ = rs.reference_stats(real_data, make_random_extractor(seed=0), cache=False)
    assert stats.n == 600 and stats.features.shape == (100, 32)


def test_compute_features_rejects_nan_images():
    from genlab.errors import GenlabError

    bad = torch.zeros(4, 1, 16, 16)
    bad[1] = float("nan")
    with pytest.raises(GenlabError, match="NaN"):
        rs.compute_features(make_random_extractor(), [bad])
