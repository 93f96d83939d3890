"""Training speed on a shared machine: the demo recipe idle and next to a program that keeps one core busy.

Each arm is a thread policy; each runs the real ``genlab train`` (configs/demo_fashion_mnist_dcgan.yaml, all of
Fashion-MNIST) for ``--seconds`` of training, once on an idle machine and once next to a busy process (a Python
loop spinning on one core), arms interleaved, ``--repeats`` times. Speed is the median images/s of the run's
records after its first ``--warmup`` seconds. Printed: images/s idle and busy per arm (mean +- std over repeats),
busy / idle of each arm, and each arm's speed against today's idle speed, all from the same run (these machines
are noisy: read the ratios).

Arms:
  before    train.threads = every core, libgomp's default waiting (what genlab did until issue 26)
  one       train.threads=1
  passive   every core, OMP_WAIT_POLICY=PASSIVE (waiting threads sleep instead of spinning)
  adaptive  train.threads=auto: every core while they are free, fewer while other programs use them
            (genlab.training.threads), with libgomp's default waiting
  adaptive-passive  the same with OMP_WAIT_POLICY=PASSIVE

Usage: python benchmarks/contention.py [--seconds 40] [--repeats 2] [--arms before,one,passive,adaptive]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genlab.threads import usable_cores

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "demo_fashion_mnist_dcgan.yaml"
BATCH = 64  # the recipe's train.batch_size


ARMS = {  # name -> (overrides, environment)
    "before": ([f"train.threads={usable_cores()}"], {"OMP_WAIT_POLICY": ""}),
    "one": (["train.threads=1"], {}),
    "passive": ([f"train.threads={usable_cores()}"], {"OMP_WAIT_POLICY": "PASSIVE"}),
    "adaptive": (["train.threads=0"], {}),
    "adaptive-passive": (["train.threads=0"], {"OMP_WAIT_POLICY": "PASSIVE"}),
}


def busy_process() -> subprocess.Popen:
    """A program that keeps one core busy (what a second training, a browser or a compile does)."""
    return subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])


def train_speed(arm: str, seconds: float, warmup: float, every: int, extra: list[str]) -> tuple[float, list[str]]:
    """Median images/s of the arm's records past ``warmup`` seconds, and its thread changes."""
    overrides, env = ARMS[arm]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "genlab", "train", str(RECIPE), "--run-dir", str(run),
               f"train.minutes={seconds / 60:.4f}", "train.epochs=100", "log.progress=false",
               "log.tensorboard=false", "log.sample_every=0", f"log.every_steps={every}", *overrides, *extra]
        full_env = {**os.environ, **env}
        full_env.pop("OMP_NUM_THREADS", None)
        subprocess.run(cmd, check=True, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in records if "time/images_per_s" in r]
    kept, clock = [], 0.0
    for r in rows:  # a window's seconds: its images (every steps of the recipe's batch) / its images per second
        clock += every * BATCH / max(r["time/images_per_s"], 1e-9)
        if clock >= warmup:
            kept.append(r)
    kept = kept or rows[len(rows) // 2:]
    changes = [r["threads_changed"] for r in rows if "threads_changed" in r]
    return statistics.median(r["time/images_per_s"] for r in kept), changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="training seconds per run")
    ap.add_argument("--warmup", type=float, default=12.0, help="seconds of each run left out of its speed")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--every", type=int, default=20, help="log.every_steps (one speed record per window)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override for every run (e.g. data.root=DIR); repeatable")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed benchmark still stops its busy process
    arms = [x.strip() for x in a.arms.split(",") if x.strip()]
    unknown = [x for x in arms if x not in ARMS]
    if unknown:
        ap.error(f"unknown arm(s) {unknown}; known: {', '.join(ARMS)}")
    speeds: dict[tuple[str, str], list[float]] = {}
    print(f"{usable_cores()} cores; {len(arms)} arms x idle/busy x {a.repeats} repeats x {a.seconds:g} s", flush=True)
    for rep in range(a.repeats):
        for condition in ("idle", "busy"):
            for arm in arms:
                hog = busy_process() if condition == "busy" else None
                try:
                    time.sleep(0.5 if hog else 0)
                    ips, changes = train_speed(arm, a.seconds, a.warmup, a.every, a.set)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
                speeds.setdefault((arm, condition), []).append(ips)
                note = f"  threads: {'; '.join(changes)}" if changes else ""
                print(f"repeat {rep + 1} {condition:4s} {arm:9s} {ips:8.0f} images/s{note}", flush=True)

    def ms(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.0f} +- {statistics.stdev(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"

    base = statistics.mean(speeds.get(("before", "idle"), [float("nan")]))
    print("\n| arm | idle images/s | one core busy | busy / idle | idle vs before | busy vs before's idle |")
    print("|---|---|---|---|---|---|")
    for arm in arms:
        idle, busy = speeds[(arm, "idle")], speeds[(arm, "busy")]
        mi, mb = statistics.mean(idle), statistics.mean(busy)
        print(f"| {arm} | {ms(idle)} | {ms(busy)} | {mb / mi:.2f} | {mi / base:.2f} | {mb / base:.2f} |")


if __name__ == "__main__":
    main()
