"""The conditional discriminator's body, forward+backward: label maps concatenated as channels of its second conv
(before) vs ``JoinedConv2d`` (genlab), interleaved in one run (read the ratio).

Usage: python benchmarks/joined_conv.py [--conds 8,16,128] [--batch 64] [--width 32] [--bf16] [--repeats 5]
"""
from __future__ import annotations

import argparse
import contextlib
from functools import partial

import torch
from interleaved import best_ms

from genlab.models.blocks import ConvBody


def fwd_bwd(body: ConvBody, joined: bool, x: torch.Tensor, c: torch.Tensor, bf16: bool) -> None:
    body.joined = joined  # False: the maps concatenated, then the plain convolution over all channels
    with torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext():
        out = body(x, c)
    out.float().sum().backward()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conds", default="8,16,128", help="condition widths (label maps), comma-separated")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=32, help="model.hidden_dim (the first conv's channels)")
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--bf16", action="store_true", help="under bf16 autocast (the default on CPUs with bf16 units)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved blocks (best is kept)")
    ap.add_argument("--iters", type=int, default=20, help="calls per block")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; spectral-norm D body, "
          f"{args.resolution} px, width {args.width}, batch {args.batch}, {'bf16' if args.bf16 else 'fp32'}, "
          f"channels_last, forward+backward, best of {args.repeats} x {args.iters}")
    print(f"{'label maps':<12}{'concat ms':>11}{'joined ms':>11}{'speed-up':>10}")
    for cond in (int(s) for s in args.conds.split(",")):
        torch.manual_seed(0)
        body = ConvBody(1, args.resolution, args.width, "none", 0.0, True, cond).to(memory_format=torch.channels_last)
        x = torch.randn(args.batch, 1, args.resolution, args.resolution).contiguous(memory_format=torch.channels_last)
        c = torch.randn(args.batch, cond)
        best = best_ms({"concat": partial(fwd_bwd, body, False, x, c, args.bf16),
                        "joined": partial(fwd_bwd, body, True, x, c, args.bf16)}, args.repeats, args.iters, warmup=True)
        plain, ours = best["concat"], best["joined"]
        print(f"{cond:<12}{plain:>11.2f}{ours:>11.2f}{plain / ours:>9.2f}x")


if __name__ == "__main__":
    main()
