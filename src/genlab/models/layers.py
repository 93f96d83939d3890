"""Layers the model zoo uses in place of PyTorch's where genlab's are faster.

``Dropout``: ``nn.Dropout`` (same arguments, same state dict, same behaviour) whose training-mode mask on the CPU
is drawn 4x cheaper. PyTorch's CPU dropout draws one Bernoulli sample per element from the scalar generator;
here one 64-bit draw gives four 15-bit uniforms, compared against ``round(p * 2**15)`` (p is kept to 1/32768;
the survivors are scaled by the exact inverse of the kept fraction, so the expectation is unchanged), ~2.5x
faster forward+backward (``benchmarks/dropout.py``). The mask comes from the global CPU generator, so checkpoints
resume to the same masks.
GPUs (fused dropout kernels), non-float32 inputs and ``inplace=True`` use ``F.dropout``.

``LatentProjection``: ``nn.ConvTranspose2d`` (same arguments and state dict) for the first layer of a DCGAN
generator, a k x k transposed convolution of a 1x1 input, computed as the matrix product it is:
(B, in) @ (in, out * k * k). oneDNN's deconvolution of a 1x1 input runs at a fraction of a matmul's speed on
the CPU (the 28px generator's first layer took as long as its main layer; docs/benchmarks.md, section 3).

``FullConv2d``: ``nn.Conv2d`` for a convolution whose kernel covers its whole input (the DCGAN discriminator's
head), computed as the linear layer it is.

``JoinedConv2d``: ``nn.Conv2d`` over [feature maps, a condition vector broadcast to maps] (the conditional
discriminator's label maps), computed without building the joined tensor: the condition's maps are constant, so
their part of the convolution is a per-sample sum of the condition's entries times the kernel summed over the taps
that fall inside the map (the border taps read zero padding): one small matrix product instead of the
condition's channels in the main convolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: uniform bits per mask element (four lanes of a 63-bit draw: the top lane has 15 random bits, so all use 15)
BITS = 15


def is_channels_last(x: torch.Tensor) -> bool:
    """NHWC in memory (and not also NCHW, as tensors with one channel or a 1x1 side are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def keep_scale(x: torch.Tensor, p: float) -> torch.Tensor:
    """The float mask: ``1 / (1 - p')`` where an element survives, 0 where it is dropped (p' = p to 1/2**15),
    laid out like ``x`` (channels_last stays channels_last)."""
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()  # uniform on [0, 2**63)
    lanes = words.view(torch.int16)[:n]
    threshold = round(p * (1 << BITS))
    keep = lanes.bitwise_and(0x7FFF) >= threshold
    mask = keep.to(x.dtype).mul_((1 << BITS) / ((1 << BITS) - threshold))
    if is_channels_last(x):
        b, c, h, w = x.shape
        return mask.view(b, h, w, c).permute(0, 3, 1, 2)
    return mask.view(x.shape)


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = keep_scale(x, p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster CPU mask (module docstring); a drop-in replacement."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.training or self.p == 0 or self.p >= 1 or self.inplace or x.device.type != "cpu"
                or x.dtype != torch.float32):
            return F.dropout(x, self.p, self.training, self.inplace)
        return _MaskedScale.apply(x, self.p)


def _plain(m: nn.modules.conv._ConvNd) -> bool:
    """Stride 1 (or irrelevant), no padding, no dilation, one group: the cases the matmul forms below compute."""
    return (m.padding, m.dilation, m.groups, getattr(m, "output_padding", (0, 0))) == ((0, 0), (1, 1), 1, (0, 0))


class LatentProjection(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in, out, k, 1, 0)`` that computes a 1x1 input as one matmul (same result up to float
    rounding, same parameters); any other input, stride, padding, groups or dilation goes to the convolution.

    A channels_last weight (in, out, k, k) is (in, k, k, out) in memory, so it is read as the (in, k*k*out)
    matrix without a copy and the product comes out channels_last; a contiguous weight gives NCHW."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (not _plain(self) or self.stride != (1, 1) or output_size is not None or x.dim() != 4
                or x.shape[-2:] != (1, 1)):
            return super().forward(x, output_size)
        n, (kh, kw), w = x.shape[0], self.kernel_size, self.weight
        x = x.reshape(n, self.in_channels)
        if is_channels_last(w):
            y = (x @ w.permute(0, 2, 3, 1).reshape(self.in_channels, -1)).view(n, kh, kw, -1).permute(0, 3, 1, 2)
        else:
            y = (x @ w.reshape(self.in_channels, -1)).view(n, self.out_channels, kh, kw)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class FullConv2d(nn.Conv2d):
    """``nn.Conv2d(in, out, k, 1, 0)`` for a k x k input (the DCGAN discriminator's head: the kernel covers the
    whole feature map), computed as one matmul (B, in*k*k) @ (in*k*k, out) with the same parameters; any other
    input size or setting goes to the convolution. The backward of the 1x1-output convolution took 3x its
    forward on the CPU (docs/benchmarks.md, section 3); a matmul's backward is two matmuls."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _plain(self) or x.dim() != 4 or x.shape[-2:] != self.kernel_size:
            return super().forward(x)
        n, w = x.shape[0], self.weight
        if is_channels_last(x):  # (B, k, k, in) in memory: flatten in that order, the weight to match
            x, w = x.permute(0, 2, 3, 1).reshape(n, -1), w.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        else:
            x, w = x.reshape(n, -1), w.reshape(self.out_channels, -1)
        return F.linear(x, w, self.bias).view(n, self.out_channels, 1, 1)



class JoinedConv2d(nn.Conv2d):
    """``nn.Conv2d(features + joined, out, ...)`` (same parameters and state dict) whose last ``joined`` input
    channels are a vector broadcast to maps: ``forward(x, cond)`` equals ``conv(cat([x, cond[:, :, None, None]
    .expand(...)], 1))`` to float rounding, values and gradients. The joined channels add
    ``sum_c cond[n, c] * S[o, c, i, j]`` with ``S`` the convolution of a map of ones with each (out, c) kernel:
    the kernel's taps that land inside the map at output (i, j). ``forward(x)`` alone is the plain convolution of
    an ``x`` that already holds every channel."""

    def __init__(self, *args, joined: int, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < joined < self.in_channels or self.groups != 1:
            raise ValueError(f"joined={joined} must be below in_channels={self.in_channels}, with groups=1")
        self.joined = joined

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            return super().forward(x)
        w = self.weight  # once: under spectral norm every read runs a power iteration
        k = self.in_channels - self.joined
        out = F.conv2d(x, w[:, :k], self.bias, self.stride, self.padding, self.dilation)
        o, (h, wd), kh, kw = self.out_channels, out.shape[-2:], *self.kernel_size
        ones = x.new_ones(1, 1, *x.shape[-2:], dtype=w.dtype)
        s = F.conv2d(ones, w[:, k:].reshape(o * self.joined, 1, kh, kw), None, self.stride, self.padding,
                     self.dilation)  # (1, out * joined, h, w)
        s = s.view(o, self.joined, h * wd).permute(1, 2, 0).reshape(self.joined, h * wd * o)
        term = (cond.to(s.dtype) @ s).view(-1, h, wd, o).permute(0, 3, 1, 2)  # NHWC in memory, as out usually is
        return out + term.to(out.dtype)
