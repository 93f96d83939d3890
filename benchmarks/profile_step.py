"""Where one training step's time goes (torch.profiler), and the GFLOP/s it reaches vs this CPU's measured peak.

For each case (default: dcgan-32 and the Fashion-MNIST recipes' DCGAN) with genlab's default settings:

1. peak: the best of a few large float32 matmuls (``--peak-size``, 2 n^3 FLOP each) and large 3x3 convolutions
   (oneDNN), measured in this run (on AMD CPUs MKL's sgemm can reach less than half of oneDNN's convolutions);
2. FLOPs of one step counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward + backward);
3. wall time per step -> achieved GFLOP/s and the fraction of the peak;
4. the profiler's self time per operator, grouped (convolutions, matmuls, normalisation, optimizer, data,
   element-wise, ...), and the rest of the wall time (Python, autograd engine, dispatch) as "outside ops".

5. the step with PyTorch's own layers in place of genlab's faster ones (``models.layers``: LatentProjection,
   FullConv2d), timed interleaved with genlab's in the same run, and the ratio.

``--layers`` adds a table per case: every convolution and linear layer of G and D alone (the input shape and
layout it sees on its first call in a step, forward + backward, with the input's gradient where that call needs
it: not for the discriminator's first layer on real images), its ms, GFLOP/s and share of all layers; for
genlab's own layers also PyTorch's layer on the same input and the speed-up.
``--overhead`` adds the per-step framework cost: a tiny network where compute is negligible, genlab's
``train_step`` vs the same operations written as a bare loop (microseconds per step).

Usage: python benchmarks/profile_step.py [--models dcgan-32,fashion_mnist_fast] [--steps 5] [--layers] [--overhead]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # cases, synthetic data, trainer construction

from genlab.models.layers import FullConv2d, LatentProjection, is_channels_last
from genlab.training import perf

#: genlab's layer -> the PyTorch layer it replaces (same parameters; the benchmark runs both)
OWN_LAYERS = {LatentProjection: nn.ConvTranspose2d, FullConv2d: nn.Conv2d}

GROUPS = (  # first match wins; matched against the aten op name
    ("convolution backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("convolution forward", ("convolution", "mkldnn_convolution", "conv2d", "conv_transpose")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul")),
    ("batch/layer norm", ("batch_norm", "group_norm", "layer_norm")),
    ("optimizer", ("_fused_adam", "adam", "rmsprop", "_foreach", "Optimizer.")),
    ("loss + activations", ("sigmoid", "leaky_relu", "relu", "threshold", "tanh", "binary_cross", "log_sigmoid",
                            "softplus", "clamp")),
    ("data (index, convert)", ("aten::index", "aten::to", "aten::_to_copy", "aten::div_", "aten::sub_",
                               "aten::contiguous", "aten::clone")),
    ("random numbers", ("normal_", "randn", "uniform_", "rand", "randperm")),
)


def _best_rate(fn, flop: float, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


def matmul_peak(n: int, repeats: int = 5) -> float:
    """GFLOP/s of a large float32 matmul (2 n^3 FLOP). On AMD CPUs MKL's sgemm may not take the AVX-512 path,
    so this can sit well under what oneDNN's convolutions reach: see conv_peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return _best_rate(lambda: a @ b, 2 * n ** 3, repeats)


def conv_peak(repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 float32 convolution in channels_last (oneDNN), 256 -> 256 channels at 16x16."""
    x = torch.randn(64, 256, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    flop = 2 * 64 * 256 * 16 * 16 * 256 * 9
    return _best_rate(lambda: F.conv2d(x, w, padding=1), flop, repeats)


def case_trainer(name: str):
    cases = {**tt.CASES, **tt.recipe_cases(set())}
    if name in cases:
        ovr = cases[name][0]
    else:
        recipe = tt.CONFIGS / f"{name}.yaml"
        if not recipe.is_file():
            raise SystemExit(f"unknown case {name!r}: one of {', '.join(cases)} or a recipe name in configs/")
        ovr = [str(recipe)]
    cfg = tt.case_config(ovr, None)
    data = tt.synthetic_data(cfg)
    torch.manual_seed(0)
    return tt.make_trainer(cfg, data)


def step_flops(trainer, run) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run(1)
    return counter.get_total_flops()


def group_of(op: str) -> str:
    for group, keys in GROUPS:
        if any(k in op for k in keys):
            return group
    return "other ops"


@contextlib.contextmanager
def pytorch_layers():
    """genlab's layers compute as the PyTorch layers they replace (their forward is swapped for the parent's)."""
    saved = {cls: cls.forward for cls in OWN_LAYERS}
    for cls, base in OWN_LAYERS.items():
        cls.forward = base.forward
    try:
        yield
    finally:
        for cls, fwd in saved.items():
            cls.forward = fwd


def _fwd_bwd_ms(fn, x: torch.Tensor, repeats: int = 5, calls: int = 10) -> float:
    for _ in range(3):
        fn(x).sum().backward()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x).sum().backward()  # gradients of the input and the parameters, as in training
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e3


def layer_table(trainer, run) -> None:
    """Each convolution / linear layer of G and D alone, on the input shape and layout it sees in training."""
    from torch.utils.flop_counter import FlopCounterMode

    seen: dict[str, tuple[nn.Module, torch.Size, tuple[int, ...], bool]] = {}
    hooks = []
    for net_name, net in trainer.state.nets.items():
        for mod_name, mod in net.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                def hook(m, args, _out, key=f"{net_name}.{mod_name}"):
                    x = args[0]  # its strides matter: oneDNN picks kernels by them (also for one channel)
                    seen.setdefault(key, (m, x.shape, x.stride(), x.requires_grad))
                hooks.append(mod.register_forward_hook(hook))
    run(1)
    for h in hooks:
        h.remove()
    rows = []
    for key, (mod, shape, stride, needs_grad) in seen.items():
        x = torch.empty_strided(shape, stride).normal_().requires_grad_(needs_grad)
        for p in mod.parameters():
            p.requires_grad_(True)  # the trainer freezes the network not in its phase
        counter = FlopCounterMode(display=False)
        with counter:
            mod(x).sum().backward()
        ms = _fwd_bwd_ms(mod, x)
        base = next((b for cls, b in OWN_LAYERS.items() if isinstance(mod, cls)), None)
        base_ms = _fwd_bwd_ms(lambda t, m=mod, b=base: b.forward(m, t), x) if base else None
        kind = type(mod).__name__.removeprefix("Parametrized")
        cl = is_channels_last(x)
        rows.append((key, kind, tuple(shape), cl, ms, counter.get_total_flops(), base_ms))
    total = sum(r[4] for r in rows)
    print(f"  {'layer (forward + backward, alone)':<36}{'type':<22}{'input':<20}{'ms':>7}{'GFLOP/s':>9}{'share':>7}"
          f"  PyTorch's layer")
    for key, kind, shape, cl, ms, flop, base_ms in rows:
        extra = f"  {base_ms:.2f} ms -> {base_ms / ms:.2f}x" if base_ms else ""
        print(f"  {key:<36}{kind:<22}{'x'.join(map(str, shape)) + (' NHWC' if cl else ''):<20}{ms:>7.2f}"
              f"{flop / ms / 1e6:>9.1f}{100 * ms / total:>6.0f}%{extra}")


def profile_case(name: str, steps: int, peak: float, layers: bool = False) -> None:
    from torch.profiler import ProfilerActivity, profile

    trainer = case_trainer(name)
    run = tt.genlab_runner(trainer, steps)
    run(2)
    flops = step_flops(trainer, run)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        run(steps)
        best = min(best, (time.perf_counter() - t0) / steps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run(steps)
        wall = (time.perf_counter() - t0) / steps
    events = [e for e in prof.key_averages() if not e.key.startswith(("ProfilerStep", "[memory]"))]
    per_group: dict[str, float] = defaultdict(float)
    for e in events:
        per_group[group_of(e.key)] += e.self_cpu_time_total / 1e3 / steps  # ms per step
    in_ops = sum(per_group.values())
    cfg = trainer.cfg
    print(f"\n## {name}: {cfg.model.name} {cfg.data.resolution}px x{cfg.data.channels}, batch {cfg.train.batch_size}, "
          f"{trainer.runtime.describe()}")
    print(f"step {best * 1e3:.1f} ms (best of 3 x {steps}); {flops / 1e9:.2f} GFLOP/step -> "
          f"{flops / best / 1e9:.1f} GFLOP/s = {100 * flops / best / 1e9 / peak:.0f}% of the measured peak")
    print(f"{'where the time goes (profiled step ' + f'{wall * 1e3:.1f} ms)':<48}{'ms/step':>9}{'share':>8}")
    for group, ms in sorted(per_group.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<46}{ms:>9.2f}{100 * ms / (wall * 1e3):>7.0f}%")
    print(f"  {'outside ops (Python, autograd engine, dispatch)':<46}{max(wall * 1e3 - in_ops, 0):>9.2f}"
          f"{100 * max(wall * 1e3 - in_ops, 0) / (wall * 1e3):>7.0f}%")
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
    print("  top operators: " + ", ".join(f"{e.key} {e.self_cpu_time_total / 1e3 / steps:.1f} ms" for e in top))
    if any(isinstance(m, tuple(OWN_LAYERS)) for net in trainer.state.nets.values() for m in net.modules()):
        own, plain = [], []
        for _ in range(3):  # interleaved, so both see the same machine load
            for times, ctx in ((own, contextlib.nullcontext), (plain, pytorch_layers)):
                with ctx():
                    t0 = time.perf_counter()
                    run(steps)
                    times.append((time.perf_counter() - t0) / steps)
        print(f"  with PyTorch's layers in place of genlab's ({', '.join(c.__name__ for c in OWN_LAYERS)}): "
              f"{min(plain) * 1e3:.1f} ms/step vs {min(own) * 1e3:.1f} ms/step ({min(plain) / min(own):.2f}x), "
              f"best of 3 x {steps} each, interleaved")
    if layers:
        layer_table(trainer, run)


def overhead(steps: int = 200) -> None:
    """Per-step framework cost on a network too small to matter: genlab's train_step vs a bare loop."""
    ovr = ["model.name=mlp-gan", "data.resolution=28", "data.channels=1", "model.hidden_dim=8", "model.depth=1",
           "model.latent_dim=8", "train.batch_size=4"]
    cfg = tt.case_config(ovr, None)
    data = tt.synthetic_data(cfg, 256)
    torch.manual_seed(0)
    trainer = tt.make_trainer(cfg, data)
    G, D = trainer.state.nets["G"], trainer.state.nets["D"]
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999), fused=True)
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999), fused=True)
    pg, pd = list(G.parameters()), list(D.parameters())
    images = data.images

    def bare(k: int) -> None:
        perm = torch.randperm(256)
        for i in range(k):
            idx = perm[(i % 64) * 4:][:4]
            x = images[idx].float().div_(127.5).sub_(1)
            for p in pd:
                p.requires_grad_(True)
            for p in pg:
                p.requires_grad_(False)
            od.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = G(torch.randn(4, 8))
            r, f = D(x), D(fake)
            (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
             + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))).backward()
            od.step()
            for p in pd:
                p.requires_grad_(False)
            for p in pg:
                p.requires_grad_(True)
            og.zero_grad(set_to_none=True)
            o = D(G(torch.randn(4, 8)))
            F.binary_cross_entropy_with_logits(o, torch.ones_like(o)).backward()
            og.step()

    genlab = tt.genlab_runner(trainer, steps)

    def per_step(fn) -> float:
        fn(20)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn(steps)
            best = min(best, (time.perf_counter() - t0) / steps)
        return best * 1e6

    torch.set_num_threads(1)
    g, b = [], []
    for _ in range(3):  # interleaved
        g.append(per_step(genlab))
        b.append(per_step(bare))
    torch.set_num_threads(trainer.runtime.threads)
    print(f"\n## per-step framework overhead (tiny MLP GAN, batch 4, 1 thread; best of 5 x {steps} steps)")
    print(f"genlab train_step {min(g):.0f} us/step, the same operations as a bare loop {min(b):.0f} us/step: "
          f"{min(g) - min(b):+.0f} us/step ({min(g) / min(b):.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dcgan-32,fashion_mnist_fast")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--peak-size", type=int, default=2048)
    ap.add_argument("--layers", action="store_true", help="time every convolution / linear layer alone")
    ap.add_argument("--overhead", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(perf.cpu_cores())
    mm = max(matmul_peak(args.peak_size) for _ in range(3))
    conv = max(conv_peak() for _ in range(3))
    peak = max(mm, conv)
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; "
          f"measured float32 peak {peak:.1f} GFLOP/s "
          f"(best of 15: matmul {args.peak_size}x{args.peak_size} {mm:.1f}, 3x3 convolution 256->256 {conv:.1f})")
    for name in args.models.split(","):
        profile_case(name, args.steps, peak, args.layers)
    if args.overhead:
        overhead()


if __name__ == "__main__":
    main()
