"""The R3GAN objective: lazy R1 + R2 on the right D updates, with the right weight, against per-image gradients;
the ResNet nets; the config checks that keep the relativistic loss where a G phase pairs it with reals."""
from __future__ import annotations

import pytest
import torch
from torch.nn.utils.parametrize import is_parametrized

from genlab.errors import ConfigError
from genlab.recipe import build_networks, load_config
from genlab.training.families import build_objective
from genlab.training.phases import Batch


def r3gan(extra=()):
    return load_config(None, ["model.name=r3gan", "train.loss=relativistic", "data.resolution=28",
                              "model.hidden_dim=4", "model.latent_dim=4", "train.device=cpu", *extra])


def test_penalties_come_with_the_first_d_update_of_every_kth_step():
    obj = build_objective(r3gan(["objective.reg_every=4", "objective.n_critic=2"]))
    ctx = obj.context(build_networks(obj.cfg), torch.device("cpu"), 0)
    seen = []
    for step in range(9):
        ctx.cache.clear()
        ctx.step = step
        seen.append([obj.regularises(ctx) for _ in range(2)])
    assert [s for s, (first, second) in enumerate(seen) if first] == [0, 4, 8]
    assert not any(second for _, second in seen)


def test_regularised_d_loss_adds_k_gamma_half_r1_plus_r2():
    cfg = r3gan(["objective.reg_every=3", "objective.gamma=0.7"])
    obj = build_objective(cfg)
    torch.manual_seed(0)
    nets = build_networks(cfg)
    ctx = obj.context(nets, torch.device("cpu"), 0)
    batch = Batch(torch.rand(5, 1, 28, 28) * 2 - 1)

    def d_phase(step):
        ctx.cache.clear()
        ctx.step = step
        torch.manual_seed(1)  # the same fakes
        return obj.d_phase(batch, ctx)

    plain, plain_stats = d_phase(1)
    regular, stats = d_phase(3)
    torch.manual_seed(1)
    fake = nets["G"](ctx.z(5)).detach()

    def per_image_r(images):  # sum over images of ||grad D(x_i)||^2, one image at a time (D has no BatchNorm)
        total = 0.0
        for x in images:
            x = x[None].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(nets["D"](x).sum(), x)
            total += g.pow(2).sum().item()
        return total / len(images)

    r1, r2 = per_image_r(batch.x), per_image_r(fake)
    assert stats["r1"].item() == pytest.approx(3 * r1, rel=1e-4)
    assert stats["r2"].item() == pytest.approx(3 * r2, rel=1e-4)
    assert (regular - plain).item() == pytest.approx(3 * 0.7 / 2 * (r1 + r2), rel=1e-4)
    assert plain_stats["r1"].item() == 0.0
    regular.backward()  # the penalty's graph reaches D's weights
    assert all(p.grad is not None for p in nets["D"].parameters())


def test_resnet_gan_d_is_spectrally_normalised_and_r3gan_d_is_not():
    sn = build_networks(load_config(None, ["model.name=resnet-gan", "data.resolution=32", "data.channels=3",
                                           "model.hidden_dim=4"]))
    layers = [m for m in sn["D"].modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(is_parametrized(m, "weight") for m in layers)
    assert not any(is_parametrized(m) for m in build_networks(r3gan())["D"].modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sn["D"].modules())


def test_relativistic_loss_config_checks():
    with pytest.raises(ConfigError, match="set train.loss=relativistic"):
        load_config(None, ["model.name=r3gan", "train.loss=bce"])
    with pytest.raises(ConfigError, match="train.loss=relativistic pairs each fake with a real image"):
        load_config(None, ["model.name=acgan", "train.loss=relativistic"])
    with pytest.raises(ConfigError, match="objective.merged_batch=True is not allowed"):
        r3gan(["objective.merged_batch=true"])
    with pytest.raises(ConfigError, match="objective.reg_every=0"):
        r3gan(["objective.reg_every=0"])
    assert load_config(None, ["model.name=dcgan", "train.loss=relativistic"]).train.loss == "relativistic"
    with pytest.raises(ConfigError, match="objective.ada_target=0.6 adapts how often train.diffaugment"):
        load_config(None, ["objective.ada_target=0.6"])
