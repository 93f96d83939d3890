"""Quality per minute on Fashion-MNIST: FID after each minute of training, plain DCGAN vs genlab's recipes.

Arms train for the same wall-clock budget (``--minutes``, default 10) on the real Fashion-MNIST training set:

(a) baseline: the DCGAN paper's recipe (Radford et al.: batch 128, Adam 2e-4 / beta1 0.5, non-saturating BCE,
    BatchNorm in G and D, latent 100, N(0, 0.02) init) in a plain fp32 eager PyTorch loop (the textbook loop
    of benchmarks/train_throughput.py);
(b), (c), ...: each ``--arm 'RECIPE.yaml [key=value ...]'`` (default: ``configs/fashion_mnist_10min.yaml``, genlab's
    best GAN, and ``configs/fashion_mnist_flow_10min.yaml``, flow matching) through genlab's training loop with its
    default speed settings and ``train.minutes`` set to the budget, so a recipe's ``train.lr_schedule`` decays over
    the arm's minutes as it would for a user with that budget.

A flow or diffusion arm draws its images with its recipe's ODE sampler (``objective.steps``, ``solver``; change
them with the arm's overrides, e.g. ``objective.steps=5``); every arm's sampling cost (seconds per 10,000 images,
timed while its snapshots are evaluated, and the network evaluations per image) is printed next to its FID, since a
GAN draws in one step.

The arms run interleaved in one process, in slices of ``--slice-seconds``, and each counts only its own
training time, so all see the same machine load. The generator (genlab: its EMA) is copied at every snapshot
minute (``--snapshots``; default every half minute up to 3, then every minute); afterwards each copy is
evaluated with the classifier FID and the class-coverage KL (``genlab.metrics.evaluate``, extractor
``classifier``: the predicted class histogram of the samples against the real one) on ``--eval-samples``
generated images against the test split. ``--repeats N`` runs it all N times with seeds ``--seed``,
``--seed+1``, ... and ends with mean +- std per minute of FID, of each arm's FID over the baseline's and of the KL,
the minutes each arm needs to reach the baseline's final FID, the FID of each further arm over arm (b)'s (genlab's
best GAN by default) per minute, and the targets of docs/benchmarks.md for the best arm. Nothing here asserts.
``--combine A.json B.json`` trains nothing: it prints that summary for the repeats of several ``--out`` files of
the same command run with different seeds (e.g. seed 0 one day, ``--seed 1 --repeats 2`` the next).

Usage: python benchmarks/quality_per_minute.py [--minutes 10] [--repeats 3] [--arm 'configs/x.yaml k=v'] [--out r.json]
       [--grids DIR]
       python benchmarks/quality_per_minute.py --combine r0.json r12.json [--out r.json]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # the plain loop

from genlab.data.base import to_float
from genlab.models import MODELS
from genlab.progress import Progress
from genlab.recipe import build_networks, image_sampler, load_config
from genlab.training.callbacks import Callback
from genlab.training.loop import Trainer, fit, load_training_data, prepare_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DCGAN_PAPER = ["data.name=fashion-mnist", "data.resolution=28", "data.channels=1", "model.name=dcgan",
               "model.latent_dim=100", "model.hidden_dim=64", "train.batch_size=128", "train.loss=bce",
               "train.g_opt.lr=2e-4", "train.d_opt.lr=2e-4", "train.g_opt.betas=[0.5,0.999]",
               "train.d_opt.betas=[0.5,0.999]", "train.device=cpu"]
QUIET = ["log.progress=false", "log.tensorboard=false"]
ENDLESS_EPOCHS = 1_000_000
#: the genlab arms when no --arm is given: genlab's best GAN for ten minutes, then flow matching
DEFAULT_ARMS = ("fashion_mnist_10min.yaml", "fashion_mnist_flow_10min.yaml")
LABELS = "abcdefghij"


#: trains step after step, calling ``after_step()`` after each, until it returns False
StepRunner = Callable[[Callable[[], bool]], None]


class Arm:
    """One recipe being trained: ``advance(seconds)`` trains for that long, copying the generator each time its
    clock passes a snapshot mark (minutes; the last is the budget). ``elapsed()`` is that clock: the seconds the
    arm has trained so far, as its own loop counts them."""

    def __init__(self, name: str, cfg, run_steps: StepRunner, generator: Callable[[], torch.nn.Module],
                 budget_s: float, marks: list[float], elapsed: Callable[[], float]):
        self.name, self.cfg, self._run_steps, self._generator = name, cfg, run_steps, generator
        self.budget_s, self.marks, self.clock, self.steps = budget_s, marks, 0.0, 0
        self._elapsed = elapsed
        self.snapshots: list[dict] = []

    @property
    def done(self) -> bool:
        return self.clock >= self.budget_s

    def advance(self, seconds: float) -> None:
        end = min(self.clock + seconds, self.budget_s)
        if self.clock >= end:
            return

        def after_step() -> bool:  # the arm's own clock, read after each step
            self.clock = self._elapsed()
            self.steps += 1
            self._snapshot()
            return self.clock < end
        self._run_steps(after_step)

    def _snapshot(self) -> None:
        while len(self.snapshots) < len(self.marks) and (self.clock >= 60 * self.marks[len(self.snapshots)]
                                                        or self.clock >= self.budget_s):
            G = self._generator()  # one step may pass several marks: each gets this copy
            self.snapshots.append({"mark": self.marks[len(self.snapshots)], "minute": round(self.clock / 60, 3),
                                   "steps": self.steps, "images": self.steps * self.cfg.train.batch_size,
                                   "state": {k: v.detach().clone() for k, v in G.state_dict().items()}})


def baseline_arm(budget_s: float, seed: int, overrides: list[str], marks: list[float]) -> Arm:
    cfg = load_config(None, DCGAN_PAPER + QUIET + overrides + [f"train.seed={seed}"])
    data = load_training_data(cfg)
    torch.manual_seed(seed)
    nets = build_networks(cfg, 0)
    nets.train()
    step_fn = tt.plain_adversarial(nets, cfg, "gan", lambda y: None)
    images, bs = data.images, cfg.train.batch_size
    state = {"perm": torch.randperm(len(images)), "i": 0, "seconds": 0.0}

    def run_steps(after_step: Callable[[], bool]) -> None:
        while True:
            t0 = time.perf_counter()  # the clock counts the steps, not the snapshot copies between them
            if (state["i"] + 1) * bs > len(images):  # a new epoch
                state["perm"], state["i"] = torch.randperm(len(images)), 0
            idx = state["perm"][state["i"] * bs:(state["i"] + 1) * bs]
            state["i"] += 1
            step_fn(to_float(images[idx]), None)
            state["seconds"] += time.perf_counter() - t0
            if not after_step():
                return

    return Arm("DCGAN paper recipe, plain PyTorch loop", cfg, run_steps, lambda: nets["G"], budget_s, marks,
               elapsed=lambda: state["seconds"])


class _Slice(Callback):
    """Stops genlab's fit when the arm's slice is used up (the next fit continues from the same step)."""

    def __init__(self, after_step: Callable[[], bool]):
        self.after_step = after_step

    def on_step_end(self, trainer) -> None:
        if not self.after_step():
            trainer.request_stop()


def genlab_arm(budget_s: float, seed: int, recipe: str, overrides: list[str], marks: list[float],
               workdir: Path) -> Arm:
    # epochs and steps without end: the time budget stops the arm (and a learning-rate schedule spans it)
    cfg = load_config(recipe, [*overrides, *QUIET, "train.device=cpu", f"train.seed={seed}",
                               f"train.epochs={ENDLESS_EPOCHS}", "train.max_steps=null",
                               f"train.minutes={budget_s / 60!r}"])
    data = load_training_data(cfg)
    trainer = Trainer(cfg, prepare_run(cfg, workdir / "genlab-best", overwrite=True), data, log=lambda *_: None)

    def run_steps(after_step: Callable[[], bool]) -> None:
        fit(trainer, (_Slice(after_step),), standard=False)  # genlab's loop, writing nothing

    name = f"genlab {Path(recipe).stem}" + (f" ({' '.join(overrides)})" if overrides else "")
    # the trainer's clock (TrainState.seconds, which also counts the copies) and its budget, so the arm ends on
    # the step at which train.minutes ends the fit
    return Arm(name, cfg, run_steps, lambda: trainer.state.generator, cfg.train.minutes * 60.0, marks,
               elapsed=lambda: trainer.state.seconds)


def snapshot_sampler(cfg, state: dict) -> tuple[Callable[[int], torch.Tensor], list[float]]:
    """``n -> images`` of one snapshot (its generator with the recipe's sampler: one call for a GAN, the ODE for a
    flow model; noise from the global RNG) and a one-element list accumulating the seconds spent drawing."""
    conditioning = MODELS.get(cfg.model.name).conditioning
    num_classes = 10 if conditioning.conditional else 0  # Fashion-MNIST's classes, for class-conditional arms
    G = build_networks(cfg, num_classes)["G"]
    G.load_state_dict(state)
    G.eval()
    latent, draw, clock = cfg.model.latent_dim, image_sampler(cfg), [0.0]

    @torch.inference_mode()
    def sample_fn(n: int) -> torch.Tensor:
        t0 = time.perf_counter()
        z = torch.randn(n, latent)
        y = conditioning.random(n, torch.default_generator, {"num_classes": num_classes})
        images = draw(G, z, y, conditioning.without(y))
        clock[0] += time.perf_counter() - t0
        return images

    return sample_fn, clock


def fid_of(cfg, state: dict, eval_samples: int, seed: int) -> tuple[float, float, float]:
    """Classifier FID and class-coverage KL (predicted class histogram vs the real one) of one snapshot, and the
    seconds its images took to draw (the generator's calls: one for a GAN, the ODE for a flow model)."""
    from genlab.metrics import DatasetRef, evaluate

    sample_fn, clock = snapshot_sampler(cfg, state)
    ref = DatasetRef(cfg.data.name, "test", cfg.data.resolution, cfg.data.channels, root=cfg.data.root,
                     verify=cfg.data.verify)
    res = evaluate(sample_fn, eval_samples, ref, "classifier", metrics=("fid", "coverage"), batch_size=500,
                   seed=seed)
    return float(res["fid"]), float(res["coverage"]["kl_to_real"]), clock[0]


def write_grids(arms: list[Arm], marks: list[float], folder: Path, seed: int, n: int = 64) -> list[Path]:
    """One PNG per snapshot minute: every arm's ``n`` images side by side, in arm order (a, b, ...), each arm from
    the same seeded noise at every minute (a flow model: the same ODE start), so a row of files shows each arm's
    progress and one file compares the arms at the same minute of training."""
    from genlab.grids import make_grid, png_bytes
    from genlab.io import atomic_write_bytes

    written = []
    for i, mark in enumerate(marks):
        panels = []
        for arm in arms:
            snap = arm.snapshots[i]
            torch.manual_seed(1000 + seed)
            panels.append(make_grid(snapshot_sampler(arm.cfg, snap["state"])[0](n), nrow=8))
        height = max(p.shape[0] for p in panels)
        gap = np.full((height, 12, panels[0].shape[2]), 255, dtype=np.uint8)
        row = []
        for panel in panels:
            padded = np.full((height, panel.shape[1], panel.shape[2]), 255, dtype=np.uint8)
            padded[:panel.shape[0]] = panel
            row += [padded, gap]
        path = folder / f"seed{seed}_minute{mark:05.2f}.png"
        atomic_write_bytes(path, png_bytes(np.concatenate(row[:-1], axis=1), scale=2))
        written.append(path)
    return written


def sampling_cost(arm: Arm) -> dict:
    """An arm's sampling: seconds per 10,000 images (mean over its snapshots' evaluations) and NFE per image."""
    per_10k = [s["sample_seconds"] * 10_000 / s["sampled"] for s in arm.snapshots]
    return {"seconds_per_10k": statistics.fmean(per_10k), "nfe": image_sampler(arm.cfg).nfe}


def snapshot_marks(minutes: float, spec: str | None) -> list[float]:
    """The minutes at which each arm's generator is copied: ``spec`` ("0.5,1,2"), else every half minute up to
    3 and every minute after (where the time to the baseline's final FID is decided), plus the budget's end."""
    if spec:
        marks = sorted({float(m) for m in spec.split(",") if m.strip()})
    else:
        marks = [m / 2 for m in range(1, 7)] + [float(m) for m in range(4, math.ceil(minutes) + 1)]
    marks = [m for m in marks if m < minutes]
    return [*marks, minutes]


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def pm(xs: list[float], digits: int = 2) -> str:
    m, s = mean_std(xs)
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def minutes_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first time a (minute, FID) curve reaches ``target``, linear between snapshots (None: never)."""
    prev = (0.0, math.inf)
    for minute, fid in curve:
        if fid <= target:
            if not math.isfinite(prev[1]):
                return minute
            return prev[0] + (minute - prev[0]) * (prev[1] - target) / (prev[1] - fid)
        prev = (minute, fid)
    return None


def progress_bar() -> Progress:
    """Where a repeat is (training, then evaluation) with its time left, on stderr: stdout keeps the tables. In a
    log file (nohup, CI) it is a plain line every 30 s (genlab.progress)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=Console(stderr=True))


def run_repeat(args, seed: int, marks: list[float], root: list[str]) -> dict:
    """All arms for one seed, interleaved; every snapshot evaluated afterwards."""
    import tempfile

    budget = args.minutes * 60
    arms = [baseline_arm(budget, seed, root, marks)]
    for i, spec in enumerate(args.arm or [str(CONFIGS / name) for name in DEFAULT_ARMS]):
        recipe, *ovr = spec.split()
        arms.append(genlab_arm(budget, seed, recipe, [*ovr, *root], marks,
                               Path(tempfile.mkdtemp(prefix=f"genlab-qpm{i}-"))))
    t0 = time.perf_counter()
    turn = 0
    with progress_bar() as bar:
        task = bar.add_task(f"seed {seed}: training {len(arms)} arms", total=budget * len(arms))
        while not all(a.done for a in arms):  # interleaved slices, rotating which arm goes first
            k = turn % len(arms)
            for arm in arms[k:] + arms[:k]:
                if not arm.done:
                    arm.advance(args.slice_seconds)
                    bar.update(task, completed=sum(min(a.clock, a.budget_s) for a in arms))
            turn += 1
    train_s = time.perf_counter() - t0
    with progress_bar() as bar:
        task = bar.add_task(f"seed {seed}: evaluating the snapshots", total=sum(len(a.snapshots) for a in arms))
        for arm in arms:
            for snap in arm.snapshots:
                snap["fid"], snap["kl"], snap["sample_seconds"] = fid_of(arm.cfg, snap["state"], args.eval_samples,
                                                                         seed)
                snap["sampled"] = args.eval_samples
                bar.advance(task)
    if args.grids:
        for path in write_grids(arms, marks, Path(args.grids), seed):
            print(f"wrote {path}")
    for arm in arms:
        for snap in arm.snapshots:
            del snap["state"]
    labels = LABELS[:len(arms)]
    costs = [sampling_cost(arm) for arm in arms]
    print(f"\n## seed {seed}: {args.minutes:g} min of training per arm (interleaved, {train_s / 60:.1f} min in all)")
    for lab, arm, cost in zip(labels, arms, costs):
        print(f"({lab}) {arm.name}: {arm.steps * arm.cfg.train.batch_size / arm.clock:.0f} images/s; sampling "
              f"{cost['seconds_per_10k']:.1f} s per 10k images ({cost['nfe']} NFE per image)")
    print(f"{'minute':>7}" + "".join(f"{'(' + lab + ') steps':>11}{'(' + lab + ') FID':>10}{'(' + lab + ') KL':>9}"
                                     for lab in labels) + "".join(f"{lab + '/a':>7}" for lab in labels[1:]))
    for i, mark in enumerate(marks):
        snaps = [a.snapshots[i] for a in arms]
        base = snaps[0]
        print(f"{mark:>7.2f}" + "".join(f"{s['steps']:>11}{s['fid']:>10.2f}{s['kl']:>9.4f}" for s in snaps)
              + "".join(f"{s['fid'] / base['fid']:>7.2f}" for s in snaps[1:]))
    return {"seed": seed, "arms": [a.name for a in arms], "train_seconds": train_s,
            "images_per_s": [a.steps * a.cfg.train.batch_size / a.clock for a in arms],
            "sampling": costs, "snapshots": [a.snapshots for a in arms]}


def summarize(repeats: list[dict], marks: list[float], minutes: float) -> dict:
    """Mean +- std over the repeats: FID, ratio to the baseline and class-coverage KL per mark; minutes to the
    baseline's final FID; issue 26's targets for the best arm (lowest mean FID at the end)."""
    n_arms = len(repeats[0]["arms"])
    labels = LABELS[:n_arms]
    fid = [[[r["snapshots"][a][i]["fid"] for r in repeats] for i in range(len(marks))] for a in range(n_arms)]
    kl = [[[r["snapshots"][a][i]["kl"] for r in repeats] for i in range(len(marks))] for a in range(n_arms)]
    ratio = [[[f / b for f, b in zip(fid[a][i], fid[0][i])] for i in range(len(marks))] for a in range(n_arms)]
    print(f"\n## {len(repeats)} repeat(s), mean +- std (seeds {', '.join(str(r['seed']) for r in repeats)})")
    for lab, a in zip(labels, range(n_arms)):
        print(f"({lab}) {repeats[0]['arms'][a]}: {pm([r['images_per_s'][a] for r in repeats], 0)} images/s; sampling "
              f"{pm([r['sampling'][a]['seconds_per_10k'] for r in repeats], 1)} s per 10k images "
              f"({repeats[0]['sampling'][a]['nfe']} NFE per image)")
    print(f"{'minute':>7}" + "".join(f"{'(' + lab + ') FID':>17}" for lab in labels)
          + "".join(f"{lab + '/a':>15}" for lab in labels[1:]) + "".join(f"{'(' + lab + ') KL':>19}" for lab in labels))
    uneven = False
    for i, mark in enumerate(marks):
        flags = [" !" if statistics.fmean(kl[a][i]) > statistics.fmean(kl[0][i]) else "  " for a in range(n_arms)]
        uneven |= any(f == " !" for f in flags[1:])
        print(f"{mark:>7.2f}" + "".join(f"{pm(fid[a][i]):>17}" for a in range(n_arms))
              + "".join(f"{pm(ratio[a][i]) + flags[a]:>15}" for a in range(1, n_arms))
              + "".join(f"{pm(kl[a][i], 4):>19}" for a in range(n_arms)))
    if uneven:
        print("!: this arm's class histogram is further from the real one (higher KL) than the baseline's at that "
              "minute: it spreads its samples less evenly over the classes, so its FID there is not a win")
    # minutes to the baseline's final FID, per repeat
    to_target = []
    for a in range(n_arms):
        times = []
        for r in repeats:
            target = r["snapshots"][0][-1]["fid"]
            curve = [(m, s["fid"]) for m, s in zip(marks, r["snapshots"][a])]
            times.append(minutes_to_reach(curve, target))
        to_target.append(times)
    if n_arms > 2:  # every further arm (e.g. flow matching) against (b), genlab's best GAN by default
        print(f"FID over ({labels[1]})'s at each minute (below 1: better than ({labels[1]}) there):")
        print(f"{'minute':>7}" + "".join(f"{lab + '/' + labels[1]:>15}" for lab in labels[2:]))
        for i, mark in enumerate(marks):
            print(f"{mark:>7.2f}" + "".join(
                f"{pm([f / b for f, b in zip(fid[a][i], fid[1][i])]):>15}" for a in range(2, n_arms)))
    print(f"minutes to the baseline's {minutes:g}-minute FID (linear between snapshots):")
    for lab, a in zip(labels, range(n_arms)):
        times = to_target[a]
        reached = [t for t in times if t is not None]
        text = pm(reached) if len(reached) == len(times) else f"not reached in {len(times) - len(reached)} of " \
               f"{len(times)} repeats" + (f" (others {pm(reached)})" if reached else "")
        print(f"  ({lab}) {text}")
    best = 1 + min(range(n_arms - 1), key=lambda a: statistics.fmean(fid[a + 1][-1])) if n_arms > 1 else 0
    targets = {}
    if best:
        whole = [(m, statistics.fmean(ratio[best][i])) for i, m in enumerate(marks) if m >= 1]
        worst = max(whole, key=lambda t: t[1]) if whole else (marks[-1], statistics.fmean(ratio[best][-1]))
        end = statistics.fmean(ratio[best][-1])
        reached = [t for t in to_target[best] if t is not None]
        t_mean = statistics.fmean(reached) if len(reached) == len(repeats) else None
        targets = {"best_arm": repeats[0]["arms"][best], "worst_ratio_from_minute_1": worst[1],
                   "worst_minute": worst[0], "ratio_at_end": end, "minutes_to_baseline_final": t_mean,
                   "end_le_0.2": end <= 0.2,
                   "baseline_final_within_0.75_min": t_mean is not None and t_mean <= 0.75}
        yes = {True: "met", False: "missed"}
        print(f"targets (issue 26), best arm ({labels[best]}), means: FID ratio <= 0.2 at {minutes:g} min: "
              f"{yes[targets['end_le_0.2']]} ({end:.2f}; worst from minute 1: {worst[1]:.2f} at {worst[0]:g} min); "
              f"the baseline's final FID within 0.75 min: {yes[targets['baseline_final_within_0.75_min']]} "
              f"({'never' if t_mean is None else f'{t_mean:.2f} min'})")
    return {"marks": marks, "fid": fid, "kl": kl, "ratio": ratio, "minutes_to_baseline_final": to_target,
            "targets": targets}


def combine(paths: list[str], out: str | None, fail: Callable[[str], None]) -> dict:
    """One summary of the repeats of several result files, which must describe the same experiment."""
    results = []
    for path in paths:
        try:
            results.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            fail(f"--combine {path}: not a results file of this script ({e.__class__.__name__}: {e})")
    first = results[0]
    key = ("arms", "minutes", "eval_samples")
    for path, res in zip(paths, results):
        if not {"repeats", *key} <= res.keys():
            fail(f"--combine {path}: not a results file of this script (write one with --out)")
        marks = [[s["mark"] for s in arm] for r in res["repeats"] for arm in r["snapshots"]]
        if any(res[k] != first[k] for k in key) or any(m != marks[0] for m in marks):
            fail(f"--combine {path}: its arms, minutes, eval samples or snapshots differ from {paths[0]}'s; "
                 "combine only runs of the same command with different seeds")
    repeats = [r for res in results for r in res["repeats"]]
    seeds = [r["seed"] for r in repeats]
    if len(set(seeds)) < len(seeds):
        fail(f"--combine: seed(s) {sorted({s for s in seeds if seeds.count(s) > 1})} appear twice; "
             "combine runs of different seeds")
    repeats.sort(key=lambda r: r["seed"])
    marks = [s["mark"] for s in repeats[0]["snapshots"][0]]
    print(f"combined {len(paths)} file(s): {len(repeats)} repeats, {first['minutes']:g} min of training per arm, "
          f"{first['eval_samples']} generated images per FID")
    summary = summarize(repeats, marks, first["minutes"])
    result = {**{k: first[k] for k in key}, "repeats": repeats, "summary": summary, "combined": list(paths)}
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per arm (wall clock)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of every arm, seeds --seed, --seed+1, ...")
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--slice-seconds", type=float, default=15.0, help="interleaving slice")
    ap.add_argument("--arm", action="append", default=None,
                    help="a genlab arm: 'RECIPE.yaml [key=value ...]'; repeat for more arms "
                         "(default: configs/fashion_mnist_10min.yaml and configs/fashion_mnist_flow_10min.yaml)")
    ap.add_argument("--snapshots", default=None, help="comma-separated minutes at which to copy the generators "
                    "(default: every 0.5 min up to 3, then every minute; the budget's end always)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST files (default: genlab's "
                    "usual search: $GENLAB_DATA_DIR, the Debian package, the download cache)")
    ap.add_argument("--no-verify", action="store_true", help="use data files whose md5 is not the published one "
                    "(data.verify=false)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                    help="train nothing: summarise the repeats of earlier --out files together (the same arms, "
                         "minutes, snapshots and eval samples; different seeds), e.g. a run of seed 0 and one of "
                         "seeds 1-2")
    ap.add_argument("--grids", default=None, help="write each snapshot minute's grids here, the arms side by side "
                    "(64 images each, the same noise at every minute): the flow model next to the GANs")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.combine:
        return combine(args.combine, args.out, ap.error)
    marks = snapshot_marks(args.minutes, args.snapshots)
    root = [f"data.root={args.data_root}"] if args.data_root else []
    root += ["data.verify=false"] if args.no_verify else []
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; {args.minutes:g} min of training per "
          f"arm, {args.repeats} repeat(s); FID and class-coverage KL: classifier features, {args.eval_samples} "
          "generated images vs the Fashion-MNIST test split")
    repeats = [run_repeat(args, args.seed + r, marks, root) for r in range(args.repeats)]
    summary = summarize(repeats, marks, args.minutes)
    result = {"arms": repeats[0]["arms"], "minutes": args.minutes, "eval_samples": args.eval_samples,
              "repeats": repeats, "summary": summary}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
