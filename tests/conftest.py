"""Shared fixtures: a small dataset in the exact Fashion-MNIST IDX format, isolated cache/data dirs, and tiny
trained runs (a GAN, a VAE: each trained once per session) for the analysis and reporting tests."""
from __future__ import annotations

import gzip
import os
import struct
import warnings
from pathlib import Path

# One OpenMP thread per test process, set before torch starts its pool: `make test` runs two workers on two cores,
# and `train.threads=auto` then keeps that one thread (no thread governor) in every run a test starts, in this
# process or in a `genlab` subprocess (tests of the governor itself remove it)
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest

from genlab.models import MODELS
from genlab.recipe import load_config
from genlab.training.loop import train

FMNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, n, h, w))
        f.write(images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def make_idx_dataset(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0, side: int = 28) -> Path:
    """Class k is a bright horizontal bar at row band k (learnable, labeled) plus noise, in IDX .gz files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def images_for(labels):
        x = rng.integers(0, 40, size=(len(labels), side, side)).astype(np.uint8)
        band = side // 10
        for i, k in enumerate(labels):
            x[i, k * band:(k + 1) * band + 1, 2:side - 2] = 220
        return x

    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        write_idx_images(folder / f"{prefix}-images-idx3-ubyte.gz", images_for(labels))
        write_idx_labels(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test process: `make test` runs two workers on two cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Tests never touch the user's cache; the real Debian copy stays readable."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    monkeypatch.delenv("GENLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("GENLAB_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("GENLAB_DINOV2_WEIGHTS", raising=False)
    monkeypatch.delenv("GENLAB_CLIP_WEIGHTS", raising=False)
    monkeypatch.delenv("GENLAB_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setenv("GENLAB_OFFLINE", "1")  # --features auto never downloads 100 MB in a test
    return cache


@pytest.fixture(scope="session")
def tiny_fmnist(tmp_path_factory) -> Path:
    return make_idx_dataset(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="session")
def classifier_cache_28(tiny_fmnist, tmp_path_factory) -> Path:
    """A cache folder holding the classifier extractor for the tiny IDX dataset at 28 px, trained once per
    session with few steps (the default recipe's >= 1000 steps would cost minutes here). Tests copy it
    (shutil.copytree) before pointing GENLAB_CACHE_DIR at it."""
    import torch

    from genlab.metrics.features import train_classifier

    cache = tmp_path_factory.mktemp("classifier28")
    n = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        torch.set_num_threads(1)
        try:
            train_classifier("fashion-mnist", 28, 1, root=str(tiny_fmnist), verify=False, epochs=8, batch_size=32)
        finally:
            torch.set_num_threads(n)
    return cache


REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def tiny_overrides(root: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=128",
            "model.hidden_dim=8", "train.batch_size=32", "train.epochs=3", "log.every_steps=1",
            "log.progress=false", "log.tensorboard=false",
            "train.device=cpu",  # the CPU unless a test is a GPU test (issue 31)
            "train.channels_last=false",  # NCHW: channels_last makes these tiny CPU nets many times slower
            *extra]


def train_tiny(root: Path, run: Path, *extra: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic IDX files do not match the published checksums
        train(load_config(None, tiny_overrides(root, *extra)), run, log=lambda *_: None)
    return run


@pytest.fixture(scope="session")
def gan_run(tiny_fmnist, tmp_path_factory) -> Path:
    return train_tiny(tiny_fmnist, tmp_path_factory.mktemp("gan") / "run", "model.name=dcgan", "model.latent_dim=8")


@pytest.fixture(scope="session")
def vae_run(tiny_fmnist, tmp_path_factory) -> Path:
    MODELS.get("vae")  # a plain lookup: the tests fail, not skip, if the model goes missing
    return train_tiny(tiny_fmnist, tmp_path_factory.mktemp("vae") / "run", "model.name=vae", "model.latent_dim=2",
                      "model.depth=1")


@pytest.fixture(scope="session")
def flow_run(tiny_fmnist, tmp_path_factory) -> Path:
    """A tiny class-conditional flow-matching run (label dropout, half-life EMA, 2 ODE steps) for the export,
    evaluation and analysis tests of flow and diffusion models."""
    MODELS.get("cflow-unet")
    return train_tiny(tiny_fmnist, tmp_path_factory.mktemp("flow") / "run", "model.name=cflow-unet", "model.depth=1",
                      "model.channel_mult=[1,2]", "model.attention=[14]", "objective.steps=2",
                      "objective.label_dropout=0.2", "train.ema_halflife_kimg=1", "log.num_samples=8",
                      "train.threads=1", "train.epochs=2")


@pytest.fixture(scope="session")
def train_tiny_run():
    """train_tiny_run(root, run, *overrides) -> a tiny run trained in ``run`` (for a conftest's own runs)."""
    return train_tiny
