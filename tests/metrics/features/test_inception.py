"""The FID Inception network: published key layout, strict loading through the real path, outputs."""
from __future__ import annotations

import io
import urllib.error

import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics.features import get_extractor, inception_fid, weights
from genlab.metrics.features.inception_fid import WEIGHTS_FILE, InceptionWeightsWarning, inception_extractor
from genlab.metrics.features.inception_net import FIDInceptionV3

# Shapes from the published port (torchvision's Inception3 module names, FID blocks, 1008 classes, no aux).
PUBLISHED_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_2b_3x3.bn.weight": (64,),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


@pytest.fixture
def random_weights(random_inception_weights):
    """A randomly initialised state dict in the published layout, saved like the real file (tests/metrics/conftest)."""
    return random_inception_weights


def test_state_dict_has_the_published_layout(random_weights):
    _, state = random_weights
    for key, shape in PUBLISHED_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert sum(k.endswith(".conv.weight") for k in state) == 94
    assert not any("AuxLogits" in k for k in state)
    params = sum(p.numel() for p in FIDInceptionV3().parameters())
    assert params == 23_850_960  # torchvision inception_v3 without aux (23,834,568) + 8 more classes


def test_strict_load_and_outputs(random_weights):
    path, state = random_weights
    with pytest.warns(InceptionWeightsWarning, match="not the published"):
        ext = inception_extractor(weights=path, download=False, batch_size=3)
    assert ext.feature_dim == 2048 and ext.num_classes == 1008 and len(ext.hash) == 16
    assert ext.info["published_weights"] is False
    for key, value in ext.net.state_dict().items():
        assert torch.equal(value, state[key]), key

    assert ext.describe()["input"] == "299px/3ch" and ext.describe()["resize"] == "bilinear, antialiased"

    # 299x299 Inception on a CPU is slow: two images (batch-size independence and determinism: in
    # tests/metrics/test_batch_size.py, for every registered extractor).
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 1, 20, 20), generator=g, dtype=torch.uint8)  # grey: repeated to RGB
    feats, logits = ext.features(images)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(feats).all() and feats.abs().sum() > 0
    torch.testing.assert_close(logits, feats @ state["fc.weight"].T)  # IS logits: pool @ W^T, no bias


def test_files_without_batch_counters_load(tmp_path, random_weights):
    _, state = random_weights
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(old, path)
    with pytest.warns(InceptionWeightsWarning):
        ext = inception_extractor(weights=path, download=False)
    from genlab.metrics.features.base import weights_hash

    assert ext.hash == weights_hash(state)  # the counters never enter the hash


def test_wrong_layout_is_a_clear_error(tmp_path, random_weights):
    _, state = random_weights
    bad = {k: v for k, v in state.items() if not k.startswith("fc.")}
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(GenlabError, match="does not fit"):
        inception_extractor(weights=path, download=False)


def test_env_variable_is_used(monkeypatch, random_weights):
    path, _ = random_weights
    monkeypatch.setenv("GENLAB_INCEPTION_WEIGHTS", str(path))
    with pytest.warns(InceptionWeightsWarning):
        ext = get_extractor("inception")
    assert ext.info["weights"] == str(path)


def test_offline_without_weights_is_one_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(weights.urllib.request, "urlopen", offline)
    with pytest.raises(GenlabError) as err:
        get_extractor("inception")
    msg = str(err.value)
    assert WEIGHTS_FILE in msg and "--features classifier" in msg and "--inception-weights" in msg
    assert str(inception_fid.weights_cache_path()) in msg
    with pytest.raises(GenlabError, match="no such file"):
        get_extractor("inception", weights="/nonexistent/file.pth")


def test_download_with_wrong_hash_leaves_no_file(monkeypatch):
    monkeypatch.delenv("GENLAB_OFFLINE")  # the tests' default: here the download itself is refused
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"not the weights"))
    with pytest.raises(GenlabError, match="download failed"):
        inception_extractor()
    assert not inception_fid.weights_cache_path().exists()
    assert list(inception_fid.weights_cache_path().parent.glob("*")) == []
