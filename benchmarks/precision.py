"""bf16 against fp32 on the CPU at equal steps: training time and FID, per recipe, over seeds.

For each recipe (default: the demo, configs/demo_fashion_mnist_dcgan.yaml), each seed and each precision, the real
``genlab train RECIPE train.precision=P train.seed=S`` runs alone (one at a time, every core), its command time is
taken, and ``genlab eval RUN --metrics fid --features classifier`` scores its final checkpoint on 10,000 samples
(the independent Fashion-MNIST classifier, the demo's yardstick). Printed per recipe: FID per seed and mean +- std
for fp32 and bf16, the mean command times and their ratio, and whether bf16 keeps the quality (its mean FID within
one fp32 std of fp32's mean, or below it). A model that keeps its quality and trains at least 1.1x faster goes into
genlab.training.perf.CPU_BF16_KEEPS, which ``train.precision=auto`` reads on CPUs with bfloat16 units. Nothing here
asserts.

Usage: python benchmarks/precision.py [--recipes configs/a.yaml,configs/b.yaml] [--seeds 0,1,2] [--steps N]
       [--num-samples 10000] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENLAB = [sys.executable, "-m", "genlab"]


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(GENLAB + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def one(recipe: str, precision: str, seed: int, a: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    """(FID, training command seconds) of one run."""
    folder = tmp / f"{Path(recipe).stem}-{precision}-{seed}"
    extra = [f"train.max_steps={a.steps}"] if a.steps else []
    seconds = run(["train", recipe, "--run-dir", str(folder), f"train.precision={precision}", f"train.seed={seed}",
                   "log.progress=false", "log.tensorboard=false", *extra, *a.set])
    run(["eval", str(folder), "--metrics", "fid", "--features", "classifier", "--num-samples", str(a.num_samples)])
    return float(json.loads((folder / "eval.json").read_text())["fid"]), seconds


def ms(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} +- {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=str(ROOT / "configs" / "demo_fashion_mnist_dcgan.yaml"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=None, help="train.max_steps (default: the recipe's)")
    ap.add_argument("--num-samples", type=int, default=10_000, help="generated images per FID")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override for every run (e.g. data.root=DIR); repeatable")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in a.recipes.split(","):
            got: dict[str, tuple[list[float], list[float]]] = {"fp32": ([], []), "bf16": ([], [])}
            for seed in seeds:
                for precision in ("fp32", "bf16"):  # interleaved: both see the same machine
                    fid, sec = one(recipe, precision, seed, a, Path(tmp))
                    got[precision][0].append(fid)
                    got[precision][1].append(sec)
                    print(f"{Path(recipe).stem} seed {seed} {precision}: FID {fid:.2f}, {sec:.1f} s", flush=True)
            (f32, t32), (fb, tb) = got["fp32"], got["bf16"]
            sd = statistics.stdev(f32) if len(f32) > 1 else 0.0
            keeps = statistics.mean(fb) <= statistics.mean(f32) + sd
            rows.append((Path(recipe).stem, f32, fb, statistics.mean(t32), statistics.mean(tb), keeps))
    print("\n| recipe | fp32 FID | bf16 FID | fp32 s | bf16 s | bf16 speed-up | bf16 keeps quality |")
    print("|---|---|---|---|---|---|---|")
    for name, f32, fb, t32, tb, keeps in rows:
        print(f"| {name} | {' / '.join(f'{x:.2f}' for x in f32)} ({ms(f32)}) | "
              f"{' / '.join(f'{x:.2f}' for x in fb)} ({ms(fb)}) | {t32:.0f} | {tb:.0f} | {t32 / tb:.2f}x | "
              f"{'yes' if keeps else 'no'} |")


if __name__ == "__main__":
    main()
