"""The flow/diffusion U-Net: its shapes at every resolution, its class embedding's "no label", and the config
checks of models whose generator is an ODE (latent = the noise image, guidance only when conditional)."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.conditioning import resolve
from genlab.models.unet import UNet
from genlab.recipe import build_networks, load_config


def unet_config(name: str, res: int = 28, channels: int = 1, extra=()):
    return load_config(None, [f"model.name={name}", f"data.resolution={res}", f"data.channels={channels}",
                              "model.hidden_dim=4", "model.depth=1", *extra])


@pytest.mark.parametrize("res, mult, attention", [(28, "[1,2,2]", "[7]"), (32, "[1,2,2,2]", "[8,4]"),
                                                  (64, "[1,1,2]", "[16]")])
def test_the_unet_keeps_the_image_shape_and_starts_near_zero(res, mult, attention):
    cfg = unet_config("flow-unet", res, 3, [f"model.channel_mult={mult}", f"model.attention={attention}"])
    assert cfg.model.latent_dim == 3 * res * res  # the ODE starts from noise of the image's shape
    G = build_networks(cfg)["G"]
    x = torch.randn(2, 3, res, res)
    out = G(x, torch.rand(2))
    assert out.shape == x.shape
    assert 0 < out.abs().max() < 1e-3  # the output conv starts near zero (EDM's init): "predict ~0" at the start


def test_the_unet_refuses_levels_and_attention_its_resolution_does_not_have():
    with pytest.raises(ConfigError, match="at most 3 levels at 28 px"):
        build_networks(unet_config("flow-unet", extra=["model.channel_mult=[1,2,2,2]"]))
    with pytest.raises(ConfigError, match=r"\[8\] is not a feature-map side .*\(its sides: 28, 14, 7\)"):
        build_networks(unet_config("flow-unet", extra=["model.attention=[8]"]))
    with pytest.raises(ConfigError, match="model.channel_mult"):
        unet_config("flow-unet", extra=["model.channel_mult=[]"])


def test_label_minus_one_is_no_label_and_labels_change_the_output():
    torch.manual_seed(0)
    net = UNet(1, 28, 4, (1, 2), 1, num_classes=3).eval()
    for m in net.modules():  # the near-zero convs (residual outputs, the output) get ordinary weights
        if isinstance(m, torch.nn.Conv2d) and m.weight.abs().max() < 1e-3:
            torch.nn.init.normal_(m.weight, std=0.1)
    x, s = torch.randn(3, 1, 28, 28), torch.full((3,), 0.5)
    with torch.no_grad():
        none = net(x, s, None)
        assert torch.equal(net(x, s, torch.full((3,), -1)), none)
        a, b = net(x, s, torch.tensor([0, 0, 0])), net(x, s, torch.tensor([2, 2, 2]))
        assert not torch.allclose(a, b) and not torch.allclose(a, none)
        assert not torch.allclose(net(x, torch.full((3,), 0.1), None), none)  # the noise label matters too
    cond = resolve("class")
    y = torch.tensor([0, 1, 2])
    assert cond.without(y).tolist() == [-1, -1, -1]
    assert cond.without(y, torch.tensor([True, False, True])).tolist() == [-1, 1, -1]
    assert resolve("none").without(None) is None


def test_guidance_and_label_dropout_need_a_class_conditional_model():
    for key in ("objective.guidance=2", "objective.label_dropout=0.1"):
        with pytest.raises(ConfigError, match="flow-unet is unconditional"):
            unet_config("flow-unet", extra=[key])
    cfg = unet_config("cflow-unet", extra=["objective.guidance=2", "objective.label_dropout=0.1"])
    assert cfg.objective["guidance"] == 2.0
    with pytest.raises(ConfigError, match="objective.steps=0"):
        unet_config("edm-unet", extra=["objective.steps=0"])
    with pytest.raises(ConfigError, match="objective.sigma_min=90.0"):
        unet_config("edm-unet", extra=["objective.sigma_min=90"])
    with pytest.raises(ConfigError, match="not an option of model flow-unet"):
        unet_config("flow-unet", extra=["objective.sigma_max=10"])
