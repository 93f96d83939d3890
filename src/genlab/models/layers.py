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


class LatentProjection(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(in, out, k, 1, 0)`` that computes a 1x1 input as one matmul (same result up to float
    rounding, same parameters); any other input, stride, padding, groups or dilation goes to the convolution."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        plain = (self.stride, self.padding, self.output_padding, self.dilation, self.groups) == \
            ((1, 1), (0, 0), (0, 0), (1, 1), 1)
        if not plain or output_size is not None or x.dim() != 4 or x.shape[-2:] != (1, 1):
            return super().forward(x, output_size)
        n = x.shape[0]
        y = x.reshape(n, self.in_channels) @ self.weight.reshape(self.in_channels, -1)
        y = y.view(n, self.out_channels, *self.kernel_size)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
