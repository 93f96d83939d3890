"""Fixtures for metric tests: synthetic image sets and a small fixed random conv extractor (fast on CPU)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data.base import ImageData
from genlab.metrics.features.base import FeatureExtractor, weights_hash


def blob_images(n: int, seed: int, resolution: int = 16, channels: int = 1) -> torch.Tensor:
    """uint8 (n, C, R, R): one or two soft bright blobs at random places on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution].astype(np.float64)
    out = np.zeros((n, channels, resolution, resolution))
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(3, resolution - 3, size=2)
            r = rng.uniform(1.5, 3.5)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            out[i] += blob[None] * rng.uniform(0.6, 1.0, size=(channels, 1, 1))
    return torch.from_numpy(np.clip(out * 255 + rng.normal(0, 4, out.shape), 0, 255).astype(np.uint8))


def noise_images(n: int, seed: int, resolution: int = 16, channels: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)


class RandomConvNet(nn.Module):
    """A fixed, seeded random conv net: (features 32-d, logits 10) for 16x16 images."""

    def __init__(self, channels: int = 1, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.c1 = nn.Conv2d(channels, 16, 3, 2, 1)
        self.c2 = nn.Conv2d(16, 32, 3, 2, 1)
        self.fc = nn.Linear(32, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.ndim > 1 else 0.1))

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        f = h.mean(dim=(2, 3))
        return f, self.fc(f)


def make_random_extractor(
    seed: int = 0, channels: int = 1, name: str = "randconv", batch_size: int = 64
) -> FeatureExtractor:
    net = RandomConvNet(channels, seed)
    return FeatureExtractor(net, name=name, hash=weights_hash(net.state_dict()), feature_dim=32, num_classes=10,
                            resolution=16, channels=channels, batch_size=batch_size)


@contextlib.contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These workloads are tiny: one thread avoids OpenMP barrier stalls when the 2 cores are shared (measured
    up to 7x faster under load, equal when idle). Restored afterwards; the library never sets threads."""
    with torch_threads(1):
        yield


@pytest.fixture
def extractor() -> FeatureExtractor:
    return make_random_extractor()


@pytest.fixture(scope="session")
def real_images() -> torch.Tensor:
    return blob_images(600, seed=1)


@pytest.fixture(scope="session")
def other_real_images() -> torch.Tensor:
    return blob_images(600, seed=2)


@pytest.fixture
def real_data(real_images) -> ImageData:
    return ImageData(images=real_images, name="blobs", split="train")


def gaussian_stats(d: int, n: int, seed: int, shift: float = 0.0, scale: float = 1.0):
    """Mean and covariance of n correlated Gaussian samples in d dims (well conditioned test statistics)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ a * scale + shift
    return x, x.mean(0), np.cov(x, rowvar=False)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_fmnist, classifier_cache_28):
    """(cache dir, TrainedClassifier): the classifier extractor of the tiny IDX dataset (bars) at its native
    28 px, the one tests/conftest.py trains once per session (found in its cache here, not trained again)."""
    from genlab.metrics.features import train_classifier

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(classifier_cache_28))
        trained = train_classifier("fashion-mnist", root=str(tiny_fmnist), verify=False)
    return classifier_cache_28, trained


@pytest.fixture
def classifier_cache(tiny_classifier, monkeypatch):
    """Point the cache at the one holding the trained tiny classifier (a copy: tests may tamper with it)."""
    import shutil

    cache, trained = tiny_classifier
    copy = Path(str(cache) + "-copy")
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(cache, copy)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(copy))
    return copy / trained.path.relative_to(cache)


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory):
    """(path, state dict): a seeded random FID Inception state dict in the published layout, saved like the real
    file (building the 24M-parameter network costs ~2 s: once per session)."""
    from genlab.metrics.features.inception_net import FIDInceptionV3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = FIDInceptionV3().state_dict()
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def tiny_own_extractors(monkeypatch):
    """Two small extractors registered for the metrics with features of their own (their real backbones are
    ViT-L/14s whose weights cannot be downloaded here): ``dinov2-tiny`` for fd_dinov2 and ``clip-tiny`` for cmmd,
    seeded random conv nets; the options that pick them; and the number of times each was built."""
    from genlab.metrics import EvalOptions
    from genlab.metrics.features.base import FEATURE_EXTRACTORS

    built = {"dinov2-tiny": 0, "clip-tiny": 0}

    def factory(name: str, seed: int):
        def make(**kwargs):
            built[name] += 1
            return make_random_extractor(seed=seed, name=name)

        return make

    monkeypatch.setitem(FEATURE_EXTRACTORS._items, "dinov2-tiny", factory("dinov2-tiny", 11))
    monkeypatch.setitem(FEATURE_EXTRACTORS._items, "clip-tiny", factory("clip-tiny", 12))
    options = EvalOptions(fd_dinov2_features="dinov2-tiny", cmmd_features="clip-tiny", kid_subsets=10,
                          kid_subset_size=100, ci_resamples=8, ci_kid_rows=100, fid_inf_min=50)
    return options, built
