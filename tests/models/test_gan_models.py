import pytest
import torch

from genlab.models.dcgan import stages, widths
from genlab.recipe import build_networks, load_config


@pytest.mark.parametrize("res", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(res, channels):
    cfg = load_config(None, ["model.name=dcgan", f"data.resolution={res}", f"data.channels={channels}",
                             "model.hidden_dim=8", "model.latent_dim=16", "model.dropout_g=0.1",
                             "model.dropout_d=0.1"])
    nets = build_networks(cfg, 0)
    x = nets["G"](torch.randn(3, 16))
    assert x.shape == (3, channels, res, res)
    assert x.min() >= -1 and x.max() <= 1
    assert nets["D"](x).shape == (3,)


def test_dcgan_report_widths():
    # the 64x64 flowers report: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3
    assert stages(64) == (4, 4)
    assert widths(64, 4) == [512, 256, 128, 64]


def test_dcgan_init_statistics():
    cfg = load_config(None, ["model.name=dcgan", "data.resolution=64", "model.hidden_dim=64"])
    nets = build_networks(cfg, 0)
    conv = [m for m in nets.modules() if isinstance(m, torch.nn.ConvTranspose2d)][1]
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    bn = [m for m in nets.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("res", [28, 32, 64])
def test_mlp_gan_shapes(res):
    cfg = load_config(None, ["model.name=mlp-gan", f"data.resolution={res}", "data.channels=3",
                             "model.hidden_dim=16", "model.depth=2", "model.spectral_norm=true"])
    nets = build_networks(cfg, 0)
    x = nets["G"](torch.randn(4, cfg.model.latent_dim))
    assert x.shape == (4, 3, res, res)
    assert nets["D"](x).shape == (4,)
    widths_g = [m.out_features for m in nets["G"].modules() if isinstance(m, torch.nn.Linear)]
    assert widths_g[:2] == [16, 32]
