"""Every recipe in configs/ trains two steps with its dataset swapped for a tiny Fashion-MNIST copy: the data
layer resizes and recolours the images to the recipe's resolution and channels, which the generator keeps."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genlab.models import MODELS
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training.callbacks import Callback
from genlab.training.loop import train

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


class InitialWeights(Callback):
    """Keeps a copy of every network's parameters as training starts."""

    def on_fit_start(self, trainer) -> None:
        self.params = {name: {k: p.detach().clone() for k, p in net.named_parameters()}
                       for name, net in trainer.state.nets.items()}


def test_there_are_recipes_for_every_family():
    models = {load_config(r).model.name for r in RECIPES}
    assert {"dcgan", "mlp-gan", "wgan", "wgan-gp", "cgan", "acgan", "text-dcgan", "text-wgan-gp", "vae", "conv-vae",
            "vae-gan", "cvae-gan", "resnet-gan", "r3gan"} <= models


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_trains_two_steps_on_swapped_data(recipe, tiny_fmnist, tmp_path):
    original = load_config(recipe)
    cfg = load_config(recipe, [
        f"data.root={tiny_fmnist}", "data.verify=false", "data.name=fashion-mnist", "data.download=false",
        "data.limit=32",
        "train.max_steps=2", "train.batch_size=8", "model.hidden_dim=4", "log.progress=false", "train.device=cpu",
        "log.tensorboard=false", "log.num_samples=4", "eval.every=0", "train.threads=1",
        # a recipe's learning-rate warm-up (EDM's: 19,531 steps) keeps two steps' updates below float32's resolution
        "train.warmup_steps=0",
        # flow and diffusion recipes draw in 2 ODE steps here (their 18-25 Heun steps are what costs, not the check)
        *(["objective.steps=2"] if MODELS.get(original.model.name).process else [])])
    assert (cfg.data.resolution, cfg.data.channels) == (original.data.resolution, original.data.channels)
    initial = InitialWeights()
    trainer = train(cfg, tmp_path / "run", log=lambda *_: None, callbacks=(initial,))
    assert trainer.state.step == 2
    # every network the recipe builds was trained: each one's parameters moved, and stayed finite
    for name, net in trainer.state.nets.items():
        now = dict(net.named_parameters())
        assert now and all(torch.isfinite(p).all() for p in now.values()), name
        moved = [k for k, p in now.items() if not torch.equal(p.detach(), initial.params[name][k])]
        # (measured: all of them, but for one bias in some discriminators, e.g. one whose gradient is 0)
        assert len(moved) >= 0.8 * len(now), f"{recipe.stem}: {len(moved)}/{len(now)} parameters of {name} moved"
    losses = [v for r in RunDir.of(tmp_path / "run").read_records() for k, v in r.items() if k.startswith("loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    images = load_run(tmp_path / "run").sample(2)
    assert images.shape == (2, original.data.channels, original.data.resolution, original.data.resolution)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1 and images.std() > 0
