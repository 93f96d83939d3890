"""Generator EMA: the average is right, and sampling (the grid, load_run, the metrics' sampler) uses it."""
from __future__ import annotations

import pytest
import torch

from genlab.checkpoint import load_checkpoint
from genlab.data.base import ImageData
from genlab.models.ema import EMA
from genlab.recipe import build_networks, load_config
from genlab.sampling import load_run
from genlab.training.loop import Trainer, fit, prepare_run


def test_ema_update_is_the_exponential_average():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    before = ema.net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    assert torch.allclose(ema.net.weight, 0.9 * before + 0.1 * net.weight.detach())


def test_ema_warmup_schedule_and_its_count_survive_a_reload():
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)
    before = ema.net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)  # decay 0.1: the average moves 90% of the way
    assert torch.allclose(ema.net.weight, 0.1 * before + 0.9 * net.weight.detach())
    for _ in range(89):
        ema.update(net)
    assert ema.current_decay() == pytest.approx(91 / 100)
    assert int(ema.state_dict()["num_updates"]) == 90
    again = EMA(net, decay=0.999, warmup=True)
    again.load_state_dict(ema.state_dict())
    assert again.current_decay() == ema.current_decay()
    # a checkpoint written before the count existed: the run's step stands in for it
    old = {k: v for k, v in ema.state_dict().items() if k != "num_updates"}
    again.load_state_dict(old, updates=20000)
    assert again.current_decay() == 0.999
    assert EMA(net, decay=0.999).current_decay() == 0.999  # no warmup: the fixed decay


@pytest.mark.parametrize("model", ["dcgan", "cgan", "conv-vae"])
def test_sampling_uses_the_ema_weights(model, tmp_path):
    cfg = load_config(None, [f"model.name={model}", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                             "model.latent_dim=6", "train.batch_size=4", "train.max_steps=4", "train.ema=0.5",
                             "log.progress=false", "log.tensorboard=false", "log.num_samples=4",
                             "train.threads=1", "train.g_opt.lr=0.01", "train.device=cpu"])
    data = ImageData(images=torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8),
                     labels=torch.arange(16) % 2, class_names=["a", "b"])
    trainer = Trainer(cfg, prepare_run(cfg, tmp_path / "run"), data, log=lambda *_: None)
    fit(trainer)
    assert trainer.state.generator is trainer.state.ema.net  # the sample grid's generator

    ckpt = load_checkpoint((tmp_path / "run" / "checkpoints").glob("step_*.pt").__next__())
    run = load_run(tmp_path / "run")
    assert run.generator is run.ema
    # an independent G with the checkpoint's EMA weights draws exactly what the run samples ...
    ema_g = build_networks(cfg, 2)["G"]
    ema_g.load_state_dict({k[len("net."):]: v for k, v in ckpt["ema"].items() if k.startswith("net.")})
    raw_g = build_networks(cfg, 2)["G"]
    raw_g.load_state_dict(ckpt["nets"]["G"])
    ema_g.eval(), raw_g.eval()
    z = run.latents(6, seed=3)
    y = torch.arange(6) % 2 if model == "cgan" else None
    args = (z,) if y is None else (z, y)
    with torch.no_grad():
        expected, raw = ema_g(*args), raw_g(*args)
    got = run.sample(6, seed=3)
    assert torch.allclose(got, expected, atol=1e-6)
    # ... and not what the raw weights draw
    assert not torch.allclose(got, raw, atol=1e-3)
