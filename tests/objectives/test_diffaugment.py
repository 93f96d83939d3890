"""DiffAugment: differentiable, shape-preserving transforms, wired into every D and G phase."""
from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.objectives.diffaugment import (
    AdaptiveAugment,
    DiffAugment,
    brightness,
    contrast,
    cutout,
    make_augment,
    saturation,
    translation,
)
from genlab.recipe import build_networks, load_config
from genlab.training.families import build_objective
from genlab.training.phases import Batch


def test_empty_policy_is_the_identity_and_unknown_words_fail():
    x = torch.randn(2, 3, 8, 8)
    assert make_augment("")(x) is x
    with pytest.raises(ConfigError, match="unknown transform"):
        DiffAugment("color,flip")
    with pytest.raises(ConfigError, match="train.diffaugment"):
        load_config(None, ["train.diffaugment=rotate"])


POLICY_TRANSFORMS = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_transforms_keep_shape_and_pass_gradients(policy):
    """Each policy keeps the shape, changes the images exactly as its transforms in order do (with the same
    random draws) and passes a gradient that is not the identity's."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    rng = torch.get_rng_state()
    out = DiffAugment(policy)(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x), "the images came back unchanged"
    torch.set_rng_state(rng)
    expected = x.detach()
    for word in policy.split(","):
        for transform in POLICY_TRANSFORMS[word]:
            expected = transform(expected)
    assert torch.equal(out.detach(), expected)
    out.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.allclose(x.grad, 2 * x.detach()), "the gradient of the identity"


def _shift(x, dy, dx):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_translation_is_a_shift_with_zero_fill_within_an_eighth():
    torch.manual_seed(1)
    x = torch.rand(8, 1, 16, 16) + 1  # no zeros in the input
    out = translation(x)
    for i in range(8):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(out[i], _shift(x[i], dy, dx))]
        assert matches, f"image {i} is not a shift of at most 2 px"


def test_cutout_zeroes_one_square_of_half_the_side_at_most():
    torch.manual_seed(0)
    out = cutout(torch.ones(16, 1, 16, 16))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    zeroed = (out == 0).flatten(1).sum(1)
    assert (zeroed <= 64).all() and (zeroed > 0).all()
    rows = (out[:, 0] == 0).any(2).sum(1)
    cols = (out[:, 0] == 0).any(1).sum(1)
    assert torch.equal(rows * cols, zeroed)  # a rectangle


def test_each_image_gets_its_own_colour_change():
    torch.manual_seed(0)
    out = DiffAugment("color")(torch.zeros(8, 3, 4, 4))
    means = out.mean(dim=(1, 2, 3))
    assert means.std() > 0.05


class Spy:
    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x


@pytest.mark.parametrize("model,extra", [("dcgan", []), ("cgan", []), ("acgan", []),
                                         ("wgan-gp", ["train.loss=wasserstein"])])
def test_augment_is_applied_to_real_and_fake_in_d_and_g_phases(model, extra):
    cfg = load_config(None, [f"model.name={model}", "data.resolution=28", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.diffaugment=translation", *extra])
    nets = build_networks(cfg, 3)
    objective = build_objective(cfg)
    ctx = objective.context(nets, torch.device("cpu"), 3)
    assert isinstance(ctx.augment, DiffAugment)
    spy = ctx.augment = Spy()
    batch = Batch(torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0]))
    d, g = objective.phases()
    d.fn(batch, ctx)
    assert spy.calls == 2  # real and fake
    g.fn(batch, ctx)
    assert spy.calls == 3


def test_adaptive_probability_follows_the_sign_of_d_on_reals():
    ada = AdaptiveAugment("color", target=0.6, interval=2, speed_images=40)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert ada(x) is x  # p starts at 0
    over = torch.tensor([1.0, 2.0, 0.5, -1.0])  # E[sign] = 0.5 per batch... below 0.6
    ada.observe(over)
    assert ada.p == 0.0 and ada.sign_rate == pytest.approx(0.5)
    ada.observe(over)
    assert ada.p == 0.0  # lowered, clamped at 0
    for _ in range(4):  # E[sign] = 1 > 0.6: +8 images / 40 per adjustment, two adjustments
        ada.observe(torch.ones(4))
    assert ada.p == pytest.approx(2 * 8 / 40)
    ada.p = 1.0
    torch.manual_seed(3)
    got = ada(x)
    torch.manual_seed(3)
    torch.rand(4, 1, 1, 1)  # the coins
    assert torch.equal(got, ada.aug(x))  # p = 1: every image augmented, with the same draws
    ada.p = 0.5
    torch.manual_seed(4)
    mixed = ada(x)
    kept = [torch.equal(mixed[i], x[i]) for i in range(4)]
    torch.manual_seed(4)
    coin = torch.rand(4, 1, 1, 1).flatten() < 0.5
    assert kept == [not c for c in coin.tolist()]
    ada.observe(torch.ones(4))
    other = AdaptiveAugment("color", target=0.6, interval=2, speed_images=40)
    other.load_state_dict(ada.state_dict())
    other.observe(torch.ones(4))
    ada.observe(torch.ones(4))
    assert other.p == ada.p == pytest.approx(0.7)
