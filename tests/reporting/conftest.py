"""Tiny trained runs shared by the reporting tests (each trained once per session)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

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


def _load_helper(name: str):
    """Import a helper module that sits next to this file (tests are imported with --import-mode=importlib)."""
    import importlib.util

    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"genlab_tests_reporting_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def with_eval():
    """with_eval(src_run, dst, fids) -> a copy of the run with eval records and an eval.json."""
    return _load_helper("report_helpers").with_eval


@pytest.fixture(scope="session")
def inspect_page():
    """inspect_page(binary, profile_dir, url, width) -> facts and problems of a page in headless Chromium."""
    return _load_helper("chromium_cdp").inspect_page
