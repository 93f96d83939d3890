"""Quality per minute on Fashion-MNIST: FID after each minute of training, plain DCGAN vs genlab's best recipe.

Two arms train for the same wall-clock budget (``--minutes``, default 10) on the real Fashion-MNIST training set:

(a) baseline: the DCGAN paper's recipe (Radford et al.: batch 128, Adam 2e-4 / beta1 0.5, non-saturating BCE,
    BatchNorm in G and D, latent 100, N(0, 0.02) init) in a plain fp32 eager PyTorch loop (the textbook loop
    of benchmarks/train_throughput.py);
(b) genlab: ``--recipe`` (default ``configs/fashion_mnist_fast.yaml``: spectral-norm D, hinge loss, EMA
    generator with warm-up, Adam 4e-4 / betas (0, 0.99), width 48, batch 32) with optional ``--best-overrides``,
    through genlab's training step with its default speed settings. ``--best-overrides`` may be repeated to
    compare several genlab arms (e.g. "model.hidden_dim=64 train.batch_size=64").

The arms run interleaved in one process, in slices of ``--slice-seconds``, and each counts only its own
training time, so both see the same machine load. The generator (genlab: its EMA) is copied at every full
minute; afterwards each copy is evaluated with the classifier FID (``genlab.metrics.evaluate``, extractor
``classifier``) on ``--eval-samples`` generated images against the test split. Nothing here asserts.

Usage: python benchmarks/quality_per_minute.py [--minutes 10] [--eval-samples 10000] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # the plain loop

from genlab.data.base import to_float
from genlab.recipe import build_networks, load_config
from genlab.training.callbacks import Callback
from genlab.training.loop import Trainer, fit, load_training_data, prepare_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DCGAN_PAPER = ["data.name=fashion-mnist", "data.resolution=28", "data.channels=1", "model.name=dcgan",
               "model.latent_dim=100", "model.hidden_dim=64", "train.batch_size=128", "train.loss=bce",
               "train.g_opt.lr=2e-4", "train.d_opt.lr=2e-4", "train.g_opt.betas=[0.5,0.999]",
               "train.d_opt.betas=[0.5,0.999]", "train.device=cpu"]
QUIET = ["log.progress=false", "log.tensorboard=false"]
ENDLESS_EPOCHS = 1_000_000


#: trains step after step, calling ``after_step()`` after each, until it returns False
StepRunner = Callable[[Callable[[], bool]], None]


class Arm:
    """One recipe being trained: ``advance(seconds)`` trains for that long (its own clock), copying the
    generator each time the clock passes a full minute."""

    def __init__(self, name: str, cfg, run_steps: StepRunner, generator: Callable[[], torch.nn.Module],
                 budget_s: float):
        self.name, self.cfg, self._run_steps, self._generator = name, cfg, run_steps, generator
        self.budget_s, self.clock, self.steps = budget_s, 0.0, 0
        self.snapshots: list[dict] = []

    @property
    def done(self) -> bool:
        return self.clock >= self.budget_s

    def advance(self, seconds: float) -> None:
        end = min(self.clock + seconds, self.budget_s)
        if self.clock >= end:
            return
        last = time.perf_counter()

        def after_step() -> bool:
            nonlocal last
            self.clock += time.perf_counter() - last
            self.steps += 1
            minute = len(self.snapshots) + 1
            if self.clock >= 60 * minute or self.clock >= self.budget_s:
                G = self._generator()
                self.snapshots.append({"minute": round(self.clock / 60, 2), "steps": self.steps,
                                       "images": self.steps * self.cfg.train.batch_size,
                                       "state": {k: v.detach().clone() for k, v in G.state_dict().items()}})
            last = time.perf_counter()  # the copy is not training time
            return self.clock < end
        self._run_steps(after_step)


def baseline_arm(budget_s: float, seed: int, overrides: list[str]) -> Arm:
    cfg = load_config(None, DCGAN_PAPER + QUIET + overrides + [f"train.seed={seed}"])
    data = load_training_data(cfg)
    torch.manual_seed(seed)
    nets = build_networks(cfg, 0)
    nets.train()
    step_fn = tt.plain_adversarial(nets, cfg, "gan", lambda y: None)
    images, bs = data.images, cfg.train.batch_size
    state = {"perm": torch.randperm(len(images)), "i": 0}

    def run_steps(after_step: Callable[[], bool]) -> None:
        while True:
            if (state["i"] + 1) * bs > len(images):  # a new epoch
                state["perm"], state["i"] = torch.randperm(len(images)), 0
            idx = state["perm"][state["i"] * bs:(state["i"] + 1) * bs]
            state["i"] += 1
            step_fn(to_float(images[idx]), None)
            if not after_step():
                return

    return Arm("DCGAN paper recipe, plain PyTorch loop", cfg, run_steps, lambda: nets["G"], budget_s)


class _Slice(Callback):
    """Stops genlab's fit when the arm's slice is used up (the next fit continues from the same step)."""

    def __init__(self, after_step: Callable[[], bool]):
        self.after_step = after_step

    def on_step_end(self, trainer) -> None:
        if not self.after_step():
            trainer.request_stop()


def genlab_arm(budget_s: float, seed: int, recipe: str, overrides: list[str], workdir: Path) -> Arm:
    # epochs without end: the time budget stops the arm
    cfg = load_config(recipe, [*overrides, *QUIET, "train.device=cpu", f"train.seed={seed}",
                               f"train.epochs={ENDLESS_EPOCHS}"])
    data = load_training_data(cfg)
    trainer = Trainer(cfg, prepare_run(cfg, workdir / "genlab-best", overwrite=True), data, log=lambda *_: None)

    def run_steps(after_step: Callable[[], bool]) -> None:
        fit(trainer, (_Slice(after_step),), standard=False)  # genlab's loop, writing nothing

    name = f"genlab {Path(recipe).stem}" + (f" ({' '.join(overrides)})" if overrides else "")
    return Arm(name, cfg, run_steps, lambda: trainer.state.generator, budget_s)


def fid_of(cfg, state: dict, eval_samples: int, seed: int) -> float:
    from genlab.metrics import DatasetRef, evaluate

    G = build_networks(cfg, 0)["G"]
    G.load_state_dict(state)
    G.eval()
    latent = cfg.model.latent_dim

    @torch.inference_mode()
    def sample_fn(n: int) -> torch.Tensor:
        return G(torch.randn(n, latent))

    ref = DatasetRef(cfg.data.name, "test", cfg.data.resolution, cfg.data.channels, root=cfg.data.root,
                     verify=cfg.data.verify)
    return float(evaluate(sample_fn, eval_samples, ref, "classifier", metrics=("fid",), batch_size=500,
                          seed=seed)["fid"])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per arm (wall clock)")
    ap.add_argument("--eval-samples", type=int, default=10000)
    ap.add_argument("--slice-seconds", type=float, default=15.0, help="interleaving slice")
    ap.add_argument("--recipe", default=str(CONFIGS / "fashion_mnist_fast.yaml"), help="genlab's arm")
    ap.add_argument("--best-overrides", action="append", default=None,
                    help="space-separated overrides of genlab's arm; repeat for more arms (default: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST files (default: genlab's "
                    "usual search: $GENLAB_DATA_DIR, the Debian package, the download cache)")
    ap.add_argument("--no-verify", action="store_true", help="use data files whose md5 is not the published one "
                    "(data.verify=false)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    import tempfile

    budget = args.minutes * 60
    root = [f"data.root={args.data_root}"] if args.data_root else []
    root += ["data.verify=false"] if args.no_verify else []
    arms = [baseline_arm(budget, args.seed, root)]
    for i, ovr in enumerate(args.best_overrides or [""]):
        arms.append(genlab_arm(budget, args.seed, args.recipe, [*ovr.split(), *root],
                               Path(tempfile.mkdtemp(prefix=f"genlab-qpm{i}-"))))
    t0 = time.perf_counter()
    turn = 0
    while not all(a.done for a in arms):  # interleaved slices, rotating which arm goes first
        k = turn % len(arms)
        for arm in arms[k:] + arms[:k]:
            if not arm.done:
                arm.advance(args.slice_seconds)
        turn += 1
    train_s = time.perf_counter() - t0
    for arm in arms:
        for snap in arm.snapshots:
            snap["fid"] = fid_of(arm.cfg, snap.pop("state"), args.eval_samples, args.seed)
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; {args.minutes:g} min of training per "
          f"arm (interleaved, {train_s / 60:.1f} min in all); FID: classifier features, {args.eval_samples} "
          "generated images vs the Fashion-MNIST test split")
    labels = "abcdefgh"
    for lab, arm in zip(labels, arms):
        print(f"({lab}) {arm.name}: {arm.steps * arm.cfg.train.batch_size / arm.clock:.0f} images/s")
    head = f"{'minute':>7}" + "".join(f"{'(' + lab + ') steps':>11}{'(' + lab + ') FID':>10}"
                                      for lab in labels[:len(arms)])
    print(head + "".join(f"{lab + '/a':>7}" for lab in labels[1:len(arms)]))
    rows = []
    for i in range(max(len(a.snapshots) for a in arms)):
        snaps = [a.snapshots[i] if i < len(a.snapshots) else None for a in arms]
        minute = next(s for s in snaps if s)["minute"]
        line = f"{minute:>7.2f}" + "".join(f"{s['steps']:>11}{s['fid']:>10.2f}" if s else f"{'':>21}" for s in snaps)
        base = snaps[0]
        line += "".join(f"{s['fid'] / base['fid']:>7.2f}" if s and base else f"{'':>7}" for s in snaps[1:])
        print(line)
        rows.append({"minute": minute, "arms": snaps})
    result = {"arms": [a.name for a in arms], "minutes": args.minutes, "eval_samples": args.eval_samples,
              "rows": rows, "images_per_s": [a.steps * a.cfg.train.batch_size / a.clock for a in arms]}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
