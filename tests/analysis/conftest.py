"""The analysis tests' own runs and helpers (gan_run and vae_run are in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.models import MODELS


@pytest.fixture(scope="session")
def cond_run(tiny_fmnist, tmp_path_factory, train_tiny_run) -> Path:
    spec = MODELS.get("acgan")  # a plain lookup: the tests fail, not skip, if the model goes missing
    assert spec.conditioning.takes_labels, "acgan must be class-conditional"
    return train_tiny_run(tiny_fmnist, tmp_path_factory.mktemp("cond") / "run", "model.name=acgan",
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
