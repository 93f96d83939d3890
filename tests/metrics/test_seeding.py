"""Evaluation never calls a CUDA seeding function: ``torch.manual_seed`` seeds every GPU (or queues that seed
until CUDA starts), which under a CPU-only fork reseeded the training GPU's noise for good (issue 31). The
``torch.cuda`` seeding functions are replaced by recorders; nothing else is faked."""
from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from genlab.evaluation import TrainingEval
from genlab.metrics.features import train_classifier
from genlab.metrics.seeding import seeded
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.loop import train

SEEDING = ("manual_seed", "manual_seed_all", "seed", "seed_all")


@pytest.fixture
def cuda_seeding(monkeypatch) -> list[str]:
    calls: list[str] = []
    for name in SEEDING:
        monkeypatch.setattr(torch.cuda, name, lambda *a, _name=name, **k: calls.append(_name))
    torch.manual_seed(0)  # the recorders see what torch.manual_seed does (the negative control)
    assert calls == ["manual_seed_all"]
    calls.clear()
    return calls


def test_seeded_blocks_restore_the_cpu_stream_and_seed_no_gpu(cuda_seeding):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    cuda_seeding.clear()
    with seeded(3):
        a = torch.rand(4)
    with seeded(3):
        b = torch.rand(4)
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), before)
    assert cuda_seeding == []


def test_classifier_training_seeds_no_gpu(cuda_seeding, tiny_fmnist, isolated_dirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny IDX files are not Fashion-MNIST's published ones
        train_classifier("fashion-mnist", 28, 1, root=str(tiny_fmnist), verify=False, epochs=1, batch_size=64)
    assert cuda_seeding == []


def test_training_with_evaluation_seeds_no_gpu(cuda_seeding, tiny_fmnist, classifier_cache_28, tmp_path,
                                               monkeypatch):
    cache = shutil.copytree(classifier_cache_28, tmp_path / "cache")
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    cfg = load_config(None, [f"data.root={tiny_fmnist}", "data.verify=false", "data.name=fashion-mnist",
                             "data.resolution=28", "data.limit=64", "model.name=dcgan", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.batch_size=32", "train.epochs=1", "train.device=cpu",
                             "train.channels_last=false", "log.progress=false", "log.tensorboard=false",
                             "eval.every=1", "eval.metrics=[fid]", "eval.features=classifier",
                             "eval.num_samples=64"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run", log=lambda *_: None, callbacks=(TrainingEval(),))
    assert [r["kind"] for r in RunDir.of(tmp_path / "run").read_records() if r.get("kind") == "eval"] == ["eval"]
    # Trainer seeds the training streams itself (torch.manual_seed: CPU and, on a GPU, the GPUs): once, before
    # any evaluation; the evaluation adds nothing
    assert cuda_seeding == ["manual_seed_all"]
