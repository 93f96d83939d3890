"""genlab's Dropout: nn.Dropout's contract (rate, scaling, gradient, layout, reproducibility) with a faster CPU mask;
LatentProjection: nn.ConvTranspose2d's result and parameters on a 1x1 input, as a matmul; FullConv2d and
JoinedConv2d: nn.Conv2d's result, gradients and second-order gradients where genlab computes it otherwise."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.layers import BITS, Dropout, FullConv2d, JoinedConv2d, LatentProjection, _MaskedScale


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_the_asked_fraction_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    y = Dropout(p).train()(x)
    dropped = float((y == 0).float().mean())
    assert abs(dropped - p) < 0.005  # 400k draws: ~4 standard deviations
    kept_p = round(p * 2 ** BITS) / 2 ** BITS
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - kept_p)))
    assert abs(float(y.mean()) - 1) < 0.01


def test_masks_are_independent_across_positions_and_calls():
    torch.manual_seed(0)
    d = Dropout(0.5).train()
    a, b = (d(torch.ones(200_000)) != 0).float(), (d(torch.ones(200_000)) != 0).float()
    assert abs(float((a * b).mean()) - 0.25) < 0.01  # two calls: independent
    assert abs(float((a[:-1] * a[1:]).mean()) - 0.25) < 0.01  # neighbours (lanes of one draw): independent
    lanes = a[: 200_000 // 4 * 4].view(-1, 4).mean(0)
    assert torch.all((lanes - 0.5).abs() < 0.01)  # every lane of the 64-bit draw keeps half


def test_gradient_is_the_same_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 8, 5, 5, requires_grad=True)
    y = Dropout(0.2).train()(x)
    y.backward(torch.ones_like(y))
    mask = x.grad
    assert torch.equal(y, x.detach() * mask)
    scale = torch.tensor(2 ** BITS / (2 ** BITS - round(0.2 * 2 ** BITS))).item()
    assert set(torch.unique(mask).tolist()) == {0.0, scale}
    # the CPU path itself (float64 here only so that gradcheck's finite differences are precise)
    assert torch.autograd.gradcheck(lambda t: (torch.manual_seed(3), _MaskedScale.apply(t, 0.3))[1],
                                    torch.randn(4, 6, dtype=torch.float64, requires_grad=True))


def test_channels_last_stays_channels_last():
    x = torch.randn(4, 16, 6, 6).contiguous(memory_format=torch.channels_last)
    y = Dropout(0.5).train()(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == x.shape
    assert torch.equal(y == 0, (y == 0).contiguous())


def test_reproducible_from_the_global_seed():
    d = Dropout(0.25).train()
    torch.manual_seed(7)
    a = d(torch.ones(1000))
    torch.manual_seed(7)
    assert torch.equal(a, d(torch.ones(1000)))


def test_a_drop_in_for_nn_dropout():
    d = Dropout(0.4)
    assert isinstance(d, nn.Dropout) and d.state_dict() == {} and "p=0.4" in repr(d)
    x = torch.randn(3, 5)
    assert torch.equal(d.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    torch.manual_seed(0)  # bf16 (and inplace, and GPUs) take F.dropout
    xb = x.to(torch.bfloat16)
    yb = Dropout(0.5).train()(xb)
    torch.manual_seed(0)
    assert yb.dtype == torch.bfloat16 and torch.equal(yb, F.dropout(xb, 0.5, True))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_latent_projection_is_the_transposed_convolution_of_a_1x1_input(bias, layout):
    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(20, 12, 7, 1, 0, bias=bias)
    proj = LatentProjection(20, 12, 7, 1, 0, bias=bias)
    assert proj.state_dict().keys() == ref.state_dict().keys()  # checkpoints load either way
    proj.load_state_dict(ref.state_dict())
    ref, proj = ref.to(memory_format=layout), proj.to(memory_format=layout)
    z = torch.randn(5, 20, 1, 1, requires_grad=True)
    a, b = ref(z), proj(z)
    assert a.shape == b.shape == (5, 12, 7, 7)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert b.is_contiguous(memory_format=layout)  # channels_last weights give channels_last output, no copy
    w = torch.randn_like(a)
    ga = torch.autograd.grad((a * w).sum(), [z, *ref.parameters()])
    gb = torch.autograd.grad((b * w).sum(), [z, *proj.parameters()])
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-5)


def test_latent_projection_leaves_other_inputs_to_the_convolution():
    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(6, 4, 3, 1, 0)
    proj = LatentProjection(6, 4, 3, 1, 0)
    proj.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 3, 3)  # not 1x1: the plain transposed convolution
    assert torch.equal(proj(x), ref(x))


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_full_conv_is_the_convolution_whose_kernel_covers_the_input(sn, layout):
    """Same output, gradients and second-order gradients (WGAN-GP's penalty) as nn.Conv2d, plain or spectral."""
    wrap = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)
    torch.manual_seed(0)
    ref = wrap(nn.Conv2d(12, 3, 7, 1, 0))
    torch.manual_seed(0)
    head = wrap(FullConv2d(12, 3, 7, 1, 0))
    assert head.state_dict().keys() == ref.state_dict().keys()
    head.load_state_dict(ref.state_dict())
    ref, head = ref.to(memory_format=layout), head.to(memory_format=layout)
    x = torch.randn(5, 12, 7, 7).contiguous(memory_format=layout).requires_grad_()
    with torch.no_grad():  # spectral norm's power iteration runs once per training forward: same state both
        ref.eval(), head.eval()
    a, b = ref(x), head(x)
    assert a.shape == b.shape == (5, 3, 1, 1)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    ga = torch.autograd.grad(a.sum(), [x, *ref.parameters()], create_graph=True)
    gb = torch.autograd.grad(b.sum(), [x, *head.parameters()], create_graph=True)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(v, u, rtol=1e-5, atol=1e-5)
    pa = torch.autograd.grad(ga[0].square().sum(), list(ref.parameters()), allow_unused=True)
    pb = torch.autograd.grad(gb[0].square().sum(), list(head.parameters()), allow_unused=True)
    names = [name for name, _ in head.named_parameters()]
    assert [u is None for u in pa] == [v is None for v in pb] == [n == "bias" for n in names]  # no 2nd order
    for u, v in zip(pa, pb, strict=True):
        if u is not None:
            torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-5)


def test_full_conv_leaves_other_inputs_to_the_convolution():
    torch.manual_seed(0)
    ref, head = nn.Conv2d(4, 2, 3, 1, 0), FullConv2d(4, 2, 3, 1, 0)
    head.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 5, 5)  # larger than the kernel: a 3x3 output, the plain convolution
    assert torch.equal(head(x), ref(x))



@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("side", [14, 15])  # even and odd maps: the border taps that read padding differ
def test_joined_conv_is_the_convolution_over_the_condition_maps(sn, layout, side):
    """The conditional D's label maps: the same output, gradients (features, condition, weights) and
    second-order gradients (a conditional WGAN-GP's penalty) as nn.Conv2d over the concatenated tensor."""
    wrap = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)
    torch.manual_seed(0)
    ref = wrap(nn.Conv2d(8 + 5, 6, 4, 2, 1))
    torch.manual_seed(0)
    conv = wrap(JoinedConv2d(8 + 5, 6, 4, 2, 1, joined=5))
    assert conv.state_dict().keys() == ref.state_dict().keys()
    conv.load_state_dict(ref.state_dict())
    ref, conv = ref.to(memory_format=layout), conv.to(memory_format=layout)
    x = torch.randn(3, 8, side, side).contiguous(memory_format=layout).requires_grad_()
    c = torch.randn(3, 5, requires_grad=True)
    with torch.no_grad():  # spectral norm's power iteration runs once per training forward: same state both
        ref.eval(), conv.eval()
    maps = c[:, :, None, None].expand(-1, -1, side, side)
    a, b = ref(torch.cat([x, maps], 1)), conv(x, c)
    assert a.shape == b.shape == (3, 6, side // 2, side // 2)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    wrt_a, wrt_b = [x, c, *ref.parameters()], [x, c, *conv.parameters()]
    ga = torch.autograd.grad((a * torch.arange(a.numel()).view_as(a).sin()).sum(), wrt_a, create_graph=True)
    gb = torch.autograd.grad((b * torch.arange(b.numel()).view_as(b).sin()).sum(), wrt_b, create_graph=True)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(v, u, rtol=1e-5, atol=1e-5)
    pa = torch.autograd.grad(ga[0].square().sum(), wrt_a[2:], allow_unused=True)
    pb = torch.autograd.grad(gb[0].square().sum(), wrt_b[2:], allow_unused=True)
    for u, v in zip(pa, pb, strict=True):
        assert (u is None) == (v is None)
        if u is not None:
            torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-5)
    assert torch.equal(conv(torch.cat([x, maps], 1)), ref(torch.cat([x, maps], 1)))  # without cond: the conv


def test_joined_conv_refuses_a_condition_as_wide_as_its_input():
    with pytest.raises(ValueError, match="joined=4 must be below in_channels=4"):
        JoinedConv2d(4, 2, 3, joined=4)
