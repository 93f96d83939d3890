"""Soak test: SIGKILL a training run at seeded random moments, resume it each time, compare with an uninterrupted run.

A tiny DCGAN on a synthetic dataset in the Fashion-MNIST IDX format trains once uninterrupted (the reference),
then again through the real ``genlab`` executable while being killed with SIGKILL ``--kills`` times (during a
step, during a checkpoint write, during an evaluation) and resumed each time with ``genlab train --resume RUN``
until it finishes. The final checkpoint's tensors must be bit-identical to the reference's and the metrics
(metrics.jsonl records, eval records, eval.json) equal. Then the same for a sweep (``genlab sweep``): its whole
runs killed mid-way, the sweep started again; its results table must equal an uninterrupted sweep's.

Usage: python benchmarks/soak.py [--kills 10] [--seed 0] [--epochs 6] [--no-sweep] [--work DIR]
Exit status 0 when every comparison is identical, 1 otherwise.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from genlab.config import known_keys
from genlab.metrics import train_classifier

EXE = Path(sys.executable).with_name("genlab")
STEPS_PER_EPOCH = 8  # data.limit 128 / batch 16
EVAL_EVERY = 2
KINDS = ("step", "checkpoint", "eval")
TMP = re.compile(r"^\.step_(\d+)\.pt\..*\.tmp$")


# ---------------------------------------------------------------------------------------------- the data
def write_idx_dataset(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0, side: int = 28) -> Path:
    """Class k is a bright bar in row band k plus noise, in the exact Fashion-MNIST IDX .gz format (as in
    tests/conftest.py's make_idx_dataset)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        x = rng.integers(0, 40, size=(n, side, side)).astype(np.uint8)
        band = side // 10
        for i, k in enumerate(labels):
            x[i, k * band:(k + 1) * band + 1, 2:side - 2] = 220
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x00000803, n, side, side) + x.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x00000801, n) + labels.astype(np.uint8).tobytes())
    return folder


def recipe(data: Path, epochs: int) -> dict:
    """Checkpoints every epoch, evaluation every EVAL_EVERY epochs with classifier FID/KID (deterministic)."""
    r = {"name": "soak",
         "data": {"name": "fashion-mnist", "root": str(data), "resolution": 28, "limit": 128},
         "model": {"name": "dcgan", "latent_dim": 8, "hidden_dim": 8, "dropout_d": 0.2},
         "train": {"epochs": epochs, "batch_size": 16, "seed": 0, "ema": 0.999, "channels_last": "false",
                   "threads": 1},
         "log": {"every_steps": 1, "checkpoint_every": 1, "keep_checkpoints": 100, "sample_every": 1,
                 "tensorboard": False, "progress": False},
         "eval": {"every": EVAL_EVERY, "metrics": ["fid", "kid"], "features": "classifier", "num_samples": 256}}
    if "data.verify" in known_keys():  # the synthetic files cannot match the published checksums
        r["data"]["verify"] = False
    return r


# ---------------------------------------------------------------------------------------------- processes
def genlab(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(EXE), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, what: str, timeout: float = 600) -> str:
    out = proc.communicate(timeout=timeout)[0]
    if proc.returncode != 0:
        raise SystemExit(f"soak: {what} failed (exit {proc.returncode}):\n{out[-3000:]}")
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and everything it started (the sweep's runs sit in their own sessions): stop the
    parent first so it starts nothing new, then kill the whole tree."""
    os.kill(pid, signal.SIGSTOP)
    tree = process_tree(pid)
    for p in reversed(tree):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return tree


def records(run: Path) -> list[dict]:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line of a killed writer
            pass
    return out


def last_step(run: Path) -> int:
    recs = [r for r in records(run) if r.get("kind") != "eval"]
    return recs[-1]["step"] if recs else 0


def checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))


def tmp_files(run: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(run / "checkpoints") if TMP.match(e.name)]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------------------------- kills
def pick_target(kind: str, rng: random.Random, resume_step: int, epochs: int) -> int:
    """An event of this kind soon after ``resume_step`` (so the kills spread over the run): a step number within
    the next two epochs, one of the next two checkpoints' steps, or the next evaluation's epoch."""
    total = epochs * STEPS_PER_EPOCH
    if kind == "step":
        return rng.randint(resume_step + 1, min(total - 1, resume_step + 2 * STEPS_PER_EPOCH))
    if kind == "checkpoint":  # the final checkpoint only when no other is left (after it there is nothing to kill)
        first = resume_step // STEPS_PER_EPOCH + 1
        return rng.randint(first, max(first, min(first + 1, epochs - 1))) * STEPS_PER_EPOCH
    return next(e for e in range(EVAL_EVERY, epochs + 1, EVAL_EVERY) if e * STEPS_PER_EPOCH > resume_step)


def fit_started(run: Path, t0_ns: int) -> bool:
    """This process reached its fit: status.json rewritten "running" (after metrics.jsonl was truncated to the
    resumed step), so what the folder shows from here on is this process's doing."""
    try:
        p = run / "status.json"
        return p.stat().st_mtime_ns >= t0_ns and json.loads(p.read_text())["state"] == "running"
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False


def newer(path: Path, t0_ns: int) -> bool:
    try:
        return path.stat().st_mtime_ns >= t0_ns
    except FileNotFoundError:
        return False


def wait_and_kill(proc: subprocess.Popen, run: Path, kind: str, target: int, rng: random.Random, t0_ns: int,
                  stale: set[str]) -> bool:
    """Poll the run folder until the target event of this process, then SIGKILL. False when the run ended first.
    ``stale``: temp files an earlier kill left behind (not this process's)."""
    while proc.poll() is None and not fit_started(run, t0_ns):
        time.sleep(0.005)
    while proc.poll() is None:
        if kind == "step" and last_step(run) >= target:
            time.sleep(rng.uniform(0, 0.02))  # into the next step
            break
        if kind == "checkpoint":
            if any(int(TMP.match(n).group(1)) >= target for n in set(tmp_files(run)) - stale):
                break  # the temp file of the checkpoint being written is there: kill now
            if any(s >= target and newer(run / "checkpoints" / f"step_{s:09d}.pt", t0_ns)
                   for s in checkpoint_steps(run)):
                break  # it was written between two polls: kill right after it
        if kind == "eval" and newer(run / "samples" / f"epoch_{target:04d}.png", t0_ns):
            time.sleep(rng.uniform(0, 0.15))  # the grid is written just before the evaluation starts
            break
        time.sleep(0.0005 if kind == "checkpoint" else 0.002)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def moment(run: Path, t0_ns: int, stale: set[str]) -> str:
    """What the run was doing when it died, read from what this process left behind."""
    tmp = sorted(set(tmp_files(run)) - stale)
    if tmp:
        return f"checkpoint write (step {int(TMP.match(tmp[0]).group(1))}, temp file left)"
    recs = records(run)
    s = last_step(run)
    epoch = s // STEPS_PER_EPOCH
    if s and s % STEPS_PER_EPOCH == 0:  # the epoch's last step is recorded: its end-of-epoch work was running
        evaluated = any(r.get("kind") == "eval" and r["step"] == s for r in recs)
        grid = newer(run / "samples" / f"epoch_{epoch:04d}.png", t0_ns)
        if epoch % EVAL_EVERY == 0 and grid and not evaluated:
            return f"evaluation (epoch {epoch}, step {s})"
        if not newer(run / "checkpoints" / f"step_{s:09d}.pt", t0_ns):
            return f"end of epoch {epoch}: grid/checkpoint (step {s})"
        return f"after the checkpoint of step {s}"
    return f"training step {s + 1} (epoch {epoch + 1})"


def resume_point(run: Path) -> str:
    """The checkpoint `genlab train --resume` starts from: the run's newest complete one."""
    steps = checkpoint_steps(run)
    return f"step_{steps[-1]:09d}.pt" if steps else "(no checkpoint: fresh start)"


def check_resume_line(out: str, expected: str) -> None:
    """The resumed process said it resumed from ``expected`` (its console may wrap the long path)."""
    said = re.search(r"resumingfrom\S*?(step_\d{9}\.pt)", "".join(out.split()))
    if (said.group(1) if said else "(no checkpoint: fresh start)") != expected:
        raise SystemExit(f"soak: the resume should have started from {expected}:\n{out[-2000:]}")


# ---------------------------------------------------------------------------------------------- comparisons
def tensors(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(tensors(v, f"{prefix}[{i}]"))
    return out


def compare_checkpoints(a: Path, b: Path) -> tuple[int, list[str]]:
    ta = tensors(torch.load(a, weights_only=True))
    tb = tensors(torch.load(b, weights_only=True))
    bad = sorted(set(ta) ^ set(tb))
    bad += [k for k in sorted(set(ta) & set(tb)) if not (ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape
                                                          and torch.equal(ta[k], tb[k]))]
    return len(ta), bad


#: what may differ between two identical runs: wall-clock figures and whether the reference statistics came from
#: the cache (the first evaluation of a fresh cache computes them, later ones load them)
NOT_COMPARED = "time/* record keys, eval.json's protocol seconds and reference.cached"


def timeless(obj):
    """``obj`` without NOT_COMPARED."""
    if isinstance(obj, dict):
        return {k: timeless(v) for k, v in obj.items()
                if not (k.startswith("time/") or k == "seconds" or k == "cached")}
    if isinstance(obj, list):
        return [timeless(v) for v in obj]
    return obj


def compare_run(ref: Path, run: Path) -> dict[str, list[str]]:
    """{"checkpoint": problems, "metrics": problems} of ``run`` against ``ref``."""
    problems: list[str] = []
    last_ref, last_run = checkpoint_steps(ref)[-1], checkpoint_steps(run)[-1]
    if last_ref != last_run:
        problems.append(f"final checkpoint step {last_run} != {last_ref}")
    n, bad = compare_checkpoints(ref / "checkpoints" / f"step_{last_ref:09d}.pt",
                                 run / "checkpoints" / f"step_{last_run:09d}.pt")
    if bad:
        problems.append(f"{len(bad)} of {n} checkpoint tensors differ: {', '.join(bad[:5])}")
    out = {"checkpoint": problems}
    problems = out["metrics"] = []
    for what, pick in (("eval records", lambda r: r.get("kind") == "eval"),
                       ("training records", lambda r: r.get("kind") != "eval")):
        ra, rb = timeless([r for r in records(ref) if pick(r)]), timeless([r for r in records(run) if pick(r)])
        if ra != rb:
            problems.append(f"{what} differ ({len(rb)} vs {len(ra)} in the reference)")
    ea = timeless(json.loads((ref / "eval.json").read_text()))
    eb = timeless(json.loads((run / "eval.json").read_text()))
    if ea != eb:
        problems.append("eval.json differs")
    return out


# ---------------------------------------------------------------------------------------------- the soak
def soak_run(work: Path, env: dict, kills: int, seed: int, epochs: int) -> bool:
    rng = random.Random(seed)
    rec = work / "soak.yaml"
    t0 = time.time()
    ref = work / "ref"
    finish(genlab(["train", str(rec), "--run-dir", str(ref)], env), "the uninterrupted run")
    t_ref = time.time() - t0
    fids = ", ".join(f"{r['fid']:.4f}" for r in records(ref) if r.get("kind") == "eval")
    print(f"uninterrupted run: {epochs * STEPS_PER_EPOCH} steps, {len(checkpoint_steps(ref))} checkpoints, "
          f"evaluations with fid {fids}, in {t_ref:.0f}s")

    run = work / "killed"
    kinds = [KINDS[i % 3] for i in range(kills)]
    rng.shuffle(kinds)
    rows = []
    resume_step, resumed_from, args = 0, "(fresh start)", ["train", str(rec), "--run-dir", str(run)]
    for i, kind in enumerate(kinds, 1):
        if resume_step >= epochs * STEPS_PER_EPOCH:
            print(f"(the final checkpoint was complete before kill {i}: nothing left to kill)")
            break
        target = pick_target(kind, rng, resume_step, epochs)
        if i > 1:
            resumed_from = resume_point(run)
        stale, t0_ns = set(tmp_files(run)), time.time_ns()
        proc = genlab(args, env)
        if not wait_and_kill(proc, run, kind, target, rng, t0_ns, stale):
            raise SystemExit(f"soak: kill {i} ({kind} {target}) missed: the run finished first:\n"
                             f"{proc.stdout.read()[-2000:]}")
        if i > 1:
            check_resume_line(proc.stdout.read(), resumed_from)
        what = {"step": f"after step {target}", "checkpoint": f"checkpoint of step {target}",
                "eval": f"eval of epoch {target}"}[kind]
        rows.append((i, what, moment(run, t0_ns, stale), resumed_from))
        steps = checkpoint_steps(run)
        resume_step = steps[-1] if steps else 0
        args = ["train", "--resume", str(run)]
    final_from = resume_point(run)
    check_resume_line(finish(genlab(args, env), "the final resume"), final_from)
    print(f"\n{'kill':>4}  {'aimed at':<24}  {'moment (what the run was doing)':<48}  resumed from (that start)")
    for i, what, mom, frm in rows:
        print(f"{i:>4}  {what:<24}  {mom:<48}  {frm}")
    print(f"{'':>4}  {'(final resume)':<24}  {'ran to the end':<48}  {final_from}")
    left = tmp_files(run)
    print(f"temp files the kills left in {run.name}/checkpoints: {len(left)}"
          + (f" ({', '.join(sorted(left))})" if left else ""))
    problems = compare_run(ref, run)
    n, _ = compare_checkpoints(ref / "checkpoints" / f"step_{checkpoint_steps(ref)[-1]:09d}.pt",
                               run / "checkpoints" / f"step_{checkpoint_steps(run)[-1]:09d}.pt")
    for p in problems["checkpoint"] + problems["metrics"]:
        print(f"  DIFFERENT: {p}")
    ok = not (problems["checkpoint"] or problems["metrics"]) and len(rows) == kills
    print(f"train: {len(rows)}/{kills} kills, each resumed; final checkpoint: {n} tensors "
          f"{'NOT identical' if problems['checkpoint'] else 'bit-identical'}; metrics.jsonl records and eval.json: "
          f"{'NOT equal' if problems['metrics'] else 'equal'} (not compared: {NOT_COMPARED})")
    print(f"train verdict: {f'{kills}/{kills} identical' if ok else 'DIFFERENT'}")
    return ok


def soak_sweep(work: Path, data: Path, env: dict, seed: int) -> bool:
    rng = random.Random(seed + 1)
    base = recipe(data, 2)
    base["eval"]["every"] = 2
    (work / "sweep_base.yaml").write_text(yaml.safe_dump(base))
    (work / "sweep.yaml").write_text(yaml.safe_dump({"name": "soak-sweep", "base": "sweep_base.yaml",
                                                     "grid": {"model.latent_dim": [4, 8]}, "seeds": 2}))
    sweep_args = ["sweep", str(work / "sweep.yaml"), "--workers", "2", "--threads", "1"]
    ref = work / "sweep_ref" / "sweep"  # the same folder name in both: results.md is titled with it
    finish(genlab([*sweep_args, "--out", str(ref)], env), "the uninterrupted sweep")
    out_dir = work / "sweep_killed" / "sweep"
    proc = genlab([*sweep_args, "--out", str(out_dir)], env)
    # mid-way: a random number of steps into the runs, once at least one run has a checkpoint
    target = rng.randint(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH - 1)
    while proc.poll() is None:
        runs = sorted(out_dir.glob("*/seed=*"))
        if any(last_step(r) >= target for r in runs):
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        raise SystemExit("soak: the sweep finished before it could be killed")
    killed = kill_tree(proc.pid)  # the sweep and every run it started
    proc.wait()
    before = {}
    for r in sorted(out_dir.glob("*/seed=*")):
        state = json.loads((r / "status.json").read_text())["state"] if (r / "status.json").exists() else "-"
        ckpt = checkpoint_steps(r)
        before[r.relative_to(out_dir).as_posix()] = (state, last_step(r), f"step {ckpt[-1]}" if ckpt else "none")
    again = finish(genlab([*sweep_args, "--out", str(out_dir)], env), "the resumed sweep")
    plan = next((line.strip() for line in again.splitlines() if "runs;" in line), "")
    print(f"\nsweep: 2 cells x 2 seeds, 2 at a time; SIGKILL to the sweep and its {len(killed) - 1} running "
          f"process(es) when a run reached step {target}:")
    print(f"  {'run':<22} {'status.json':<12} {'last step':>9}  last checkpoint (resumes from)")
    for name, (state, step, ckpt) in before.items():
        print(f"  {name:<22} {state:<12} {step:>9}  {ckpt}")
    print(f"  started again: {plan}")
    same = {}
    for f in ("results.csv", "results.md", "runs.csv"):
        a, b = ref / f, out_dir / f
        if a.exists() or b.exists():
            same[f] = a.exists() and b.exists() and a.read_text() == b.read_text()
    runs_same = all(not any(compare_run(r, out_dir / r.relative_to(ref)).values())
                    for r in sorted(ref.glob("*/seed=*")))
    ok = all(same.values()) and runs_same
    files = ", ".join(f"{k} {'equal' if v else 'DIFFERENT'}" for k, v in same.items())
    print(f"sweep: {files}; "
          f"every run's final checkpoint and metrics {'identical' if runs_same else 'DIFFERENT'} "
          f"({len(list(ref.glob('*/seed=*')))} runs)")
    print(f"sweep verdict: {'results identical' if ok else 'DIFFERENT'}; the uninterrupted sweep's results.md:")
    print((ref / "results.md").read_text())
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs during the killed run")
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    ap.add_argument("--epochs", type=int, default=6, help=f"epochs of {STEPS_PER_EPOCH} steps")
    ap.add_argument("--no-sweep", action="store_true", help="skip the sweep part")
    ap.add_argument("--work", type=Path, help="keep everything in this folder (default: a temporary one)")
    ap.add_argument("--data", type=Path, help="a Fashion-MNIST IDX folder to use (default: a synthetic one)")
    ap.add_argument("--cache", type=Path, help="GENLAB_CACHE_DIR (default: WORK/cache; a cached classifier for "
                    "the data is reused)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="genlab-soak-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"soak: {work} is not empty; give an empty or new folder")
    work.mkdir(parents=True, exist_ok=True)
    cache = args.cache or work / "cache"
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    try:
        data = args.data or write_idx_dataset(work / "data")
        (work / "soak.yaml").write_text(yaml.safe_dump(recipe(data, args.epochs)))
        os.environ["GENLAB_CACHE_DIR"] = env["GENLAB_CACHE_DIR"]
        torch.set_num_threads(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the synthetic files do not match the published checksums
            train_classifier("fashion-mnist", 28, 1, root=str(data), epochs=2, batch_size=32)  # FID features
        print(f"genlab soak: {args.kills} SIGKILLs at seeded moments (seed {args.seed}), {args.epochs} epochs x "
              f"{STEPS_PER_EPOCH} steps, checkpoint every epoch, eval every {EVAL_EVERY} epochs; {EXE}")
        ok = soak_run(work, env, args.kills, args.seed, args.epochs)
        if not args.no_sweep:
            ok = soak_sweep(work, data, env, args.seed) and ok
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"verdict: {'identical' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
