"""Every registered model trains a few steps at every resolution it supports and samples the right images."""
from __future__ import annotations

import io

import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import ConfigError
from genlab.models import MODELS
from genlab.recipe import build_networks, load_config
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training import loop
from genlab.training.loop import Trainer, prepare_run

CRITICS = {"wgan", "wgan-gp", "text-wgan-gp"}
CLASS_NAMES = ["cat", "automobile", "ship"]
ALL = [(name, res) for name, spec in MODELS.items() for res in spec.resolutions]


def toy_data(res: int, channels: int, n: int = 8, labeled: bool = True, captions=None) -> ImageData:
    g = torch.Generator().manual_seed(res)
    return ImageData(images=torch.randint(0, 256, (n, channels, res, res), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 3 if labeled else None, class_names=CLASS_NAMES if labeled else [],
                     captions=captions, name="toy")


def zoo_config(name: str, res: int, channels: int, extra=()):
    # flow and diffusion U-Nets: one block per level, two ODE steps (their default 18-50 steps cost seconds here)
    process = ["model.depth=1", "model.channel_mult=[1,2]", "objective.steps=2"] if MODELS.get(name).process else []
    return load_config(None, [
        f"model.name={name}", f"data.resolution={res}", f"data.channels={channels}", "model.hidden_dim=4",
        "model.latent_dim=6", "model.embed_dim=4", "train.batch_size=4", "train.max_steps=2",
        f"train.loss={(MODELS.get(name).losses or ('bce',))[0]}", "log.progress=false", "log.tensorboard=false",
        "train.device=cpu",
        "log.num_samples=4", "train.threads=1", *process, *extra])


def fit(cfg, data, path) -> Trainer:
    trainer = Trainer(cfg, prepare_run(cfg, path), data, log=lambda *_: None)
    loop.fit(trainer)
    return trainer


@pytest.mark.parametrize("name,res", ALL)
def test_trains_and_samples_images_of_the_right_shape_and_range(name, res, tmp_path):
    channels = 1 if res == 28 else 3
    cfg = zoo_config(name, res, channels)
    trainer = fit(cfg, toy_data(res, channels), tmp_path / "run")
    assert trainer.state.step == 2
    assert all(torch.isfinite(torch.tensor(v)) for k, v in trainer.reporter.last.items() if k.startswith("loss"))
    assert list((tmp_path / "run" / "samples").glob("epoch_*.png"))
    run = load_run(tmp_path / "run")
    images = run.sample(5, seed=1)
    assert images.shape == (5, channels, res, res)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    assert images.std() > 0
    assert torch.equal(images, run.sample(5, seed=1))  # seeded
    assert run.sampler(seed=2)(3).shape == (3, channels, res, res)


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if s.conditioning.conditional])
def test_conditional_models_honour_requested_labels(name, tmp_path):
    fit(zoo_config(name, 32, 3), toy_data(32, 3), tmp_path / "run")
    run = load_run(tmp_path / "run")
    z = run.latents(4, seed=0)
    for k in range(3):
        expected = run.generate(z, torch.full((4,), k))
        assert torch.equal(run.sample(4, seed=0, labels=[k]), expected)
    assert not torch.allclose(run.sample(4, seed=0, labels=[0]), run.sample(4, seed=0, labels=[1]))


@pytest.mark.parametrize("name", ["cgan", "acgan", "cvae-gan"])
def test_class_conditional_model_on_unlabeled_data_is_a_config_error(name, tmp_path):
    with pytest.raises(ConfigError, match="no labels"):
        fit(zoo_config(name, 32, 3), toy_data(32, 3, labeled=False), tmp_path / "run")
    with pytest.raises(ConfigError, match="model.num_classes=2"):
        fit(zoo_config(name, 32, 3, ["model.num_classes=2"]), toy_data(32, 3), tmp_path / "run2")


def test_critic_models_refuse_the_bce_loss():
    for name in CRITICS:
        with pytest.raises(ConfigError, match="train.loss=wasserstein"):
            load_config(None, [f"model.name={name}", "train.loss=bce"])


def test_wgan_clips_critic_weights_and_can_use_rmsprop(tmp_path):
    cfg = zoo_config("wgan", 32, 3, ["objective.clip_value=0.005", "objective.n_critic=3",
                                     "train.d_opt.optimizer=rmsprop",
                                     "train.g_opt.optimizer=rmsprop"])
    trainer = fit(cfg, toy_data(32, 3), tmp_path / "run")
    assert isinstance(trainer.state.optimizers["D"], torch.optim.RMSprop)
    assert all(p.abs().max() <= 0.005 for p in trainer.state.nets["D"].parameters())
    with pytest.raises(ConfigError, match="train.d_opt.optimizer"):
        load_config(None, ["train.d_opt.optimizer=sgd"])


def test_wgan_gp_critic_has_no_batchnorm_and_no_sigmoid():
    nets = build_networks(zoo_config("wgan-gp", 64, 3), 0)
    mods = list(nets["D"].modules())
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Sigmoid)) for m in mods)
    assert any(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1 for m in mods)


def test_models_list_names_every_model_with_conditioning_and_resolutions(monkeypatch):
    from rich.console import Console

    import genlab.cli
    from genlab.cli.models import list_models

    buf = io.StringIO()
    monkeypatch.setattr(genlab.cli, "console", Console(file=buf, width=400))
    list_models()
    lines = buf.getvalue().splitlines()
    for name, spec in MODELS.items():
        cells = next(cells for cells in ([c.strip() for c in line.split("│")] for line in lines)
                     if len(cells) > 5 and cells[1] == name)
        assert cells[2:5] == [spec.objective, spec.conditioning.name, ", ".join(map(str, spec.resolutions))]
        assert cells[5] == spec.description


@pytest.mark.parametrize("name,extra", [
    ("wgan-gp", ["objective.n_critic=2", "train.diffaugment=color,translation,cutout"]),
    ("acgan", ["train.ema=0.9"]), ("text-dcgan", []), ("conv-vae", []), ("cvae-gan", []),
    # lazy R1/R2 every 2nd step and a cosine schedule with warm-up: both follow the resumed step count
    ("r3gan", ["objective.reg_every=2", "train.lr_schedule=cosine", "train.warmup_steps=1"]),
    # LeCam's averages and ADA's p (moving fast here) are the objective's state: the checkpoint must keep them
    ("dcgan", ["objective.lecam=0.3", "objective.ada_target=0.5", "objective.ada_interval=1",
               "objective.ada_images=8", "train.diffaugment=color"]),
    # EDM's noise levels and noise, the half-life EMA's count (flow: tests/training/test_diffusion.py, with kill -9)
    ("cedm-unet", ["train.ema_halflife_kimg=1", "objective.label_dropout=0.5"]),
])
def test_resume_is_exact(name, extra, tmp_path):
    """2 epochs in one go == 1 epoch + resume + 1 epoch (RNG, optimizers, vocabulary, EMA all restored)."""
    data = toy_data(32, 3, n=8)

    def cfg(epochs):
        return zoo_config(name, 32, 3, ["train.max_steps=null", f"train.epochs={epochs}", *extra])

    fit(cfg(2), data, tmp_path / "ref")
    fit(cfg(1), data, tmp_path / "run")
    last = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1]
    resumed = Trainer(cfg(2), RunDir.of(tmp_path / "run"), data, resume_from=last, log=lambda *_: None)
    loop.fit(resumed)
    assert resumed.state.step == 4
    ref = torch.load(sorted((tmp_path / "ref" / "checkpoints").glob("step_*.pt"))[-1], weights_only=True)
    got = torch.load(sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1], weights_only=True)
    for net in ref["nets"]:
        for k, v in ref["nets"][net].items():
            assert torch.equal(v, got["nets"][net][k]), f"{net}.{k}"
    if ref["ema"] is not None:
        assert all(torch.equal(v, got["ema"][k]) for k, v in ref["ema"].items())
