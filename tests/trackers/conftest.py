"""Tiny real trainings through ``genlab.train`` for the tracker tests: the tiny IDX set, 2 steps per epoch (64
images, batch 32), a record every step, and evaluations on genlab's classifier features (cached per session)."""
from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import genlab

#: a fit of 2 steps per epoch on the tiny set; evaluations each epoch on 64 generated images
EVAL = ["eval.every=1", "eval.metrics=[fid]", "eval.features=classifier", "eval.num_samples=64"]


def base_overrides(root: Path) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28",
            "data.limit=64", "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "train.batch_size=32",
            "train.epochs=1", "log.every_steps=1", "log.progress=false", "log.num_samples=16",
            "train.channels_last=false", "train.threads=1"]


@pytest.fixture
def eval_cache(classifier_cache_28, tmp_path, monkeypatch) -> Path:
    """genlab's cache with the classifier extractor already trained (evaluations cost a fraction of a second)."""
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    return cache


def warning_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("warning:")]


@pytest.fixture
def tiny_train(tiny_fmnist) -> Callable[..., genlab.Run]:
    """tiny_train(run_dir, *overrides, resume=False, callbacks=(), lines=None) -> the trained Run; what it logs
    is appended to ``lines``."""

    def go(run_dir: Path, *overrides: str, resume: bool = False, callbacks: Sequence = (),
           lines: list[str] | None = None) -> genlab.Run:
        out = lines if lines is not None else []
        args = list(overrides) if resume else [*base_overrides(tiny_fmnist), *overrides]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic IDX files do not match the published checksums
            return genlab.train(None, args, run_dir=run_dir, resume=resume, log=lambda line: out.append(str(line)),
                                callbacks=callbacks)

    return go
