"""The one training loop: every model is a list of phases (see phases.py) run by ``Trainer``."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from genlab import __version__
from genlab.config import Config, diff, from_dict, to_dict, to_yaml
from genlab.data.base import ImageData, to_float
from genlab.errors import ConfigError, RunError, TrainingDiverged
from genlab.io import atomic_torch_save, atomic_write_text
from genlab.models import MODELS
from genlab.reporting.grids import save_grid
from genlab.rundir import RunDir
from genlab.training.checkpoint import load_checkpoint, prune, save_checkpoint, set_rng_state
from genlab.training.ema import EMA
from genlab.training.phases import OBJECTIVES, Batch, make_optimizer
from genlab.training.reporting import Reporter

#: keys a resume may change (they do not alter what the model has learned so far)
RESUMABLE_KEYS = ("train.epochs", "train.max_steps", "train.device", "log.", "eval.", "data.root", "data.download",
                  "name", "description")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA device is available; use train.device=cpu")
    return torch.device(name)


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch, a pure function of (seed, epoch): resume needs no saved order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def load_training_data(cfg: Config) -> ImageData:
    from genlab.data import load_dataset

    data = load_dataset(cfg.data, split="train")
    if cfg.data.limit is not None and cfg.data.limit < len(data):
        data = data.subset(cfg.data.limit)
    if cfg.train.batch_size > len(data):
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than the training set ({len(data)} "
                          f"images of {cfg.data.name}); lower train.batch_size or raise data.limit")
    return data


class _StopFlag:
    """First Ctrl-C asks the loop to checkpoint and stop at the next step boundary; a second one aborts."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class Trainer:
    def __init__(self, cfg: Config, run: RunDir, data: ImageData, *, resume_from: Optional[Path] = None,
                 rank: int = 0, world_size: int = 1, log: Callable[[str], None] = print):
        self.cfg, self.run, self.log = cfg, run, log
        self.rank, self.world_size, self.is_main = rank, world_size, rank == 0
        self.device = resolve_device(cfg.train.device)
        self.spec = MODELS.get(cfg.model.name)
        self.num_classes = cfg.model.num_classes or data.num_classes
        self.class_names = list(data.class_names)
        torch.manual_seed(cfg.train.seed)
        self.nets: nn.ModuleDict = self.spec.build(cfg, self.num_classes).to(self.device)
        self.objective = OBJECTIVES.get(self.spec.objective)(cfg)
        self.ctx = self.objective.context(self.nets, self.device, self.num_classes)
        self.extra: dict = {"num_classes": self.num_classes, "class_names": self.class_names}
        self.objective_setup(data)
        self.optimizers = {
            name: make_optimizer([p for n in owns for p in self.nets[n].parameters()], ocfg)
            for name, (owns, ocfg) in self.objective.optimizers().items()
        }
        self.phases = self.objective.phases()
        self.ema = EMA(self.nets["G"], cfg.train.ema).to(self.device) if cfg.train.ema > 0 else None
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device) if data.labels is not None else None
        self.steps_per_epoch = len(data) // cfg.train.batch_size
        self.step = self.epoch = self.step_in_epoch = 0
        self.best: Optional[float] = None
        self.epoch_end_hooks: list[Callable[["Trainer", int], None]] = []
        if resume_from is not None:
            self._restore(load_checkpoint(resume_from, self.device))
        self.fixed = self._fixed_noise()
        self.reporter = Reporter(run.metrics, run.tb if cfg.log.tensorboard else None,
                                 resume_step=self.step, enabled=self.is_main)

    def objective_setup(self, data: ImageData) -> None:
        setup = getattr(self.objective, "setup", None)
        if setup is not None:  # e.g. a text vocabulary built from the captions
            self.extra.update(setup(data, self.ctx) or {})

    # ----------------------------------------------------------------------------------------- state
    def _fixed_noise(self) -> dict[str, torch.Tensor]:
        if self.run.noise.is_file():
            return {k: v.to(self.device) for k, v in torch.load(self.run.noise, weights_only=True).items()}
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        n = self.cfg.log.num_samples
        fixed = {"z": torch.randn(n, self.cfg.model.latent_dim, generator=g)}
        if self.num_classes:
            fixed["y"] = torch.arange(n) % self.num_classes
        if self.is_main:
            atomic_torch_save(fixed, self.run.noise)
        return {k: v.to(self.device) for k, v in fixed.items()}

    def _restore(self, ckpt: dict) -> None:
        for k, sd in ckpt["nets"].items():
            self.nets[k].load_state_dict(sd)
        for k, sd in ckpt["optimizers"].items():
            self.optimizers[k].load_state_dict(sd)
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.step, self.epoch, self.step_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["step_in_epoch"]
        self.best = ckpt.get("extra", {}).get("best")
        self.extra.update({k: v for k, v in ckpt.get("extra", {}).items() if k != "best"})
        set_rng_state(ckpt["rng"])

    def save(self) -> Path:
        path = self.run.checkpoints / f"step_{self.step:09d}.pt"
        if self.is_main:
            save_checkpoint(path, nets=self.nets, optimizers=self.optimizers, ema=self.ema, step=self.step,
                            epoch=self.epoch, step_in_epoch=self.step_in_epoch, config=to_dict(self.cfg),
                            extra={**self.extra, "best": self.best})
            prune(self.run.checkpoint_files(), self.cfg.log.keep_checkpoints)
        return path

    def status(self, state: str, **kw) -> None:
        if self.is_main:
            atomic_write_text(self.run.path / "status.json", json.dumps(
                {"state": state, "step": self.step, "epoch": self.epoch, "epochs": self.cfg.train.epochs,
                 "genlab_version": __version__, **kw}, indent=1))

    @property
    def generator(self) -> nn.Module:
        return self.ema.net if self.ema is not None else self.nets["G"]

    @torch.no_grad()
    def write_samples(self, epoch: int) -> None:
        if not self.is_main:
            return
        G = self.generator
        was_training = G.training
        G.eval()
        images = G(self.fixed["z"], self.fixed.get("y")) if self.num_classes and "y" in self.fixed \
            and self.spec.conditioning != "none" else G(self.fixed["z"])
        G.train(was_training)
        grid = save_grid(images, self.run.samples / f"epoch_{epoch:04d}.png")
        self.reporter.image("samples", grid, self.step)

    # ------------------------------------------------------------------------------------------ loop
    def lrs(self) -> dict[str, float]:
        return {k: o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        stats: dict[str, torch.Tensor] = {}
        self.ctx.cache.clear()
        for phase in self.phases:
            for name, net in self.nets.items():
                net.requires_grad_(name in phase.trains)
            opt = self.optimizers[phase.optimizer]
            for _ in range(phase.repeat):
                opt.zero_grad(set_to_none=True)
                loss, s = phase.fn(batch, self.ctx)
                loss.backward()
                opt.step()
                if phase.after is not None:
                    phase.after(self.ctx)
            stats.update(s)
        if self.ema is not None:
            self.ema.update(self.nets["G"])
        return stats

    def fit(self) -> None:
        cfg, bs = self.cfg, self.cfg.train.batch_size
        max_steps = cfg.train.max_steps
        self.nets.train()
        self.status("running")
        try:
            with _StopFlag() as stop:
                while self.epoch < cfg.train.epochs and not (max_steps and self.step >= max_steps):
                    perm = epoch_permutation(cfg.train.seed, self.epoch, len(self.images)).to(self.device)
                    self.reporter.reset_clock()
                    while self.step_in_epoch < self.steps_per_epoch:
                        idx = perm[self.step_in_epoch * bs:(self.step_in_epoch + 1) * bs]
                        batch = Batch(to_float(self.images[idx]),
                                      self.labels[idx] if self.labels is not None else None)
                        stats = self.train_step(batch)
                        self.step += 1
                        self.step_in_epoch += 1
                        self.reporter.add(self.step, stats, bs * self.world_size)
                        if self.on_step is not None:
                            self.on_step(self)
                        if self.step % cfg.log.every_steps == 0:
                            self._flush()
                        if stop.set:
                            self._flush()
                            path = self.save()
                            self.status("interrupted")
                            raise RunError(f"interrupted at step {self.step} (epoch {self.epoch + 1}); "
                                           f"checkpoint {path}; continue with `genlab train --resume "
                                           f"{self.run.path}`")
                        if max_steps and self.step >= max_steps:
                            break
                    finished_epoch = self.step_in_epoch >= self.steps_per_epoch
                    self._flush()
                    if finished_epoch:
                        self.epoch += 1
                        self.step_in_epoch = 0
                    self._end_of_epoch(final=self.epoch >= cfg.train.epochs or bool(
                        max_steps and self.step >= max_steps))
        except TrainingDiverged as e:
            self.status("diverged", error=str(e))
            files = self.run.checkpoint_files()
            last = f"the last good checkpoint is {files[-1]}" if files else "no checkpoint was written yet"
            raise TrainingDiverged(f"training diverged: {e}; {last}; try a lower learning rate") from None
        finally:
            self.reporter.close()
        self.status("finished")

    def _flush(self) -> None:
        rec = self.reporter.flush(self.epoch + 1, self.lrs())
        if rec and self.on_record is not None:
            self.on_record(rec)

    on_record: Optional[Callable[[dict], None]] = None
    on_step: Optional[Callable[["Trainer"], None]] = None

    def _end_of_epoch(self, final: bool) -> None:
        e, lg = self.epoch, self.cfg.log
        if final or (lg.sample_every and e % lg.sample_every == 0):
            self.write_samples(e)
        for hook in self.epoch_end_hooks:
            hook(self, e)
        if final or e % lg.checkpoint_every == 0:
            self.save()


def prepare_run(cfg: Config, run_dir: str | Path, overwrite: bool = False) -> RunDir:
    run = RunDir.of(run_dir)
    run.create(overwrite=overwrite)
    atomic_write_text(run.config, to_yaml(cfg))
    return run


def check_resume(saved: Config, requested: Config) -> list[str]:
    """Keys that differ and may not change on resume (empty = fine)."""
    return [k for k in diff(saved, requested) if not any(k == p or (p.endswith(".") and k.startswith(p))
                                                          for p in RESUMABLE_KEYS)]


def resume_config(run: RunDir, overrides: list[str] | tuple[str, ...] = (), recipe: Optional[str] = None) -> Config:
    """The run's saved config plus overrides; refuses changes that would make the resume inexact."""
    from omegaconf import OmegaConf

    from genlab.config import load_config

    run.require()
    saved_dict = OmegaConf.to_container(OmegaConf.load(run.config))
    saved = from_dict(saved_dict)  # type: ignore[arg-type]
    requested = load_config(recipe, overrides) if recipe else load_config(None, overrides, base=saved_dict)
    bad = check_resume(saved, requested)
    if bad:
        raise ConfigError(f"cannot resume {run.path}: the config changed in {', '.join(bad)}; "
                          "start a new run (another --run-dir) for a different config")
    return requested


def train(cfg: Config, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
          log: Callable[[str], None] = print, hooks: tuple = ()) -> Trainer:
    """Train (or resume) one run; returns the finished trainer. The CLI calls exactly this."""
    run = RunDir.of(run_dir)
    resume_from = None
    if resume:
        files = run.require().checkpoint_files()
        resume_from = files[-1] if files else None
        if resume_from is not None:
            log(f"resuming from {resume_from}")
        atomic_write_text(run.config, to_yaml(cfg))
    else:
        run = prepare_run(cfg, run_dir, overwrite)
    data = load_training_data(cfg)
    trainer = Trainer(cfg, run, data, resume_from=resume_from, log=log)
    for h in hooks:
        h(trainer)
    if cfg.log.progress and trainer.is_main:
        from genlab.training.progress import TrainingProgress

        with TrainingProgress(trainer):
            trainer.fit()
    else:
        trainer.fit()
    return trainer
