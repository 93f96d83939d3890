"""Dropout forward+backward: genlab's CPU layer vs ``nn.Dropout``, interleaved in one run (read the ratio).

Usage: python benchmarks/dropout.py [--shape 64,64,32,32] [--p 0.1] [--repeats 5] [--iters 20]
"""
from __future__ import annotations

import argparse
from functools import partial

import torch
from interleaved import best_ms
from torch import nn

from genlab.models.layers import Dropout


def fwd_bwd(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    layer(x).backward(grad)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="64,64,32,32", help="activation shape (N,C,H,W or N,F)")
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved blocks (best is kept)")
    ap.add_argument("--iters", type=int, default=20, help="calls per block")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    layers = {"nn.Dropout": nn.Dropout(args.p).train(), "genlab Dropout": Dropout(args.p).train()}
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; dropout p={args.p} on {shape}, "
          f"forward+backward, best of {args.repeats} x {args.iters}")
    print(f"{'layout':<16}{'nn.Dropout ms':>15}{'genlab ms':>11}{'speed-up':>10}")
    formats = {"contiguous": torch.contiguous_format}
    if len(shape) == 4:
        formats["channels_last"] = torch.channels_last
    for name, fmt in formats.items():
        x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_()
        grad = torch.randn(shape).contiguous(memory_format=fmt)
        best = best_ms({k: partial(fwd_bwd, layer, x, grad) for k, layer in layers.items()}, args.repeats, args.iters)
        plain, ours = best["nn.Dropout"], best["genlab Dropout"]
        print(f"{name:<16}{plain:>15.2f}{ours:>11.2f}{plain / ours:>9.2f}x")


if __name__ == "__main__":
    main()
