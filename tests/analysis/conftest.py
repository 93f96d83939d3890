"""Tiny trained runs shared by the analysis tests (each trained once per session)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from genlab.models import MODELS
from genlab.recipe import load_config
from genlab.training.loop import train


def tiny_overrides(root: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=128",
            "model.hidden_dim=8", "train.batch_size=32", "train.epochs=3", "log.every_steps=1",
            "log.progress=false", "log.tensorboard=false",
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
def cond_run(tiny_fmnist, tmp_path_factory) -> Path:
    spec = MODELS.get("acgan")  # a plain lookup: the tests fail, not skip, if the model goes missing
    assert spec.conditioning.takes_labels, "acgan must be class-conditional"
    return train_tiny(tiny_fmnist, tmp_path_factory.mktemp("cond") / "run", "model.name=acgan",
                      "model.latent_dim=8", "train.epochs=1")


@pytest.fixture(scope="session")
def band_predictor():
    """A perfect classifier for the synthetic dataset: class k is a bright bar in row band k."""

    def predict(images: torch.Tensor) -> torch.Tensor:
        x = images.mean(dim=(1, 3))  # (N, H)
        band = images.shape[-2] // 10
        scores = torch.stack([x[:, k * band:(k + 1) * band + 1].mean(1) for k in range(10)], 1)
        return scores.argmax(1)

    return predict
