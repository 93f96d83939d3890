"""The real Fashion-MNIST from Debian's dataset-fashion-mnist (make test installs it; missing, this test fails)."""
from __future__ import annotations

from pathlib import Path

import torch

from genlab.data import fetch, load_dataset, prepare_dataset

DEBIAN = Path("/usr/share/datasets")


def test_real_fashion_mnist_from_the_system_location(fx, monkeypatch):
    assert (DEBIAN / "fashion-mnist").is_dir(), (
        f"{DEBIAN / 'fashion-mnist'} is missing: apt-get install -y dataset-fashion-mnist (make test does)")
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", (DEBIAN,))
    assert prepare_dataset("fashion-mnist", download=False) == DEBIAN / "fashion-mnist"
    for split, n in (("train", 60000), ("test", 10000)):
        data = load_dataset(fx.cfg("fashion-mnist", resolution=28, channels=1, verify=True), split)
        assert data.images.shape == (n, 1, 28, 28) and data.images.dtype == torch.uint8
        assert torch.bincount(data.labels).tolist() == [n // 10] * 10
        assert data.class_names[0] == "T-shirt/top" and 0 < data.images.float().mean() < 255
