"""The one training loop: every model is a list of phases (see phases.py) run by ``Trainer``.

Speed settings (precision, channels_last, torch.compile, threads, fused optimizers) come resolved from
``perf.resolve_runtime``; several processes under torchrun train one run through ``distributed`` (DDP, the
global batch sharded over ranks, rank 0 writing the run folder).
"""
from __future__ import annotations

import contextlib
import json
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch
from torch import nn

from genlab import __version__
from genlab.config import Config, to_dict, to_yaml
from genlab.data.base import ImageData
from genlab.data.loading import load_training_set
from genlab.errors import ConfigError, RunError, TrainingDiverged
from genlab.io import atomic_torch_save, atomic_write_text
from genlab.models import MODELS
from genlab.recipe import build_networks
from genlab.reporting.grids import save_grid
from genlab.rundir import RunDir
from genlab.training import ddp, distributed, perf
from genlab.training.checkpoint import load_checkpoint, prune, rng_state, save_checkpoint, set_rng_state
from genlab.training.ema import EMA
from genlab.training.families import build_objective
from genlab.training.phases import Batch, Phase, make_optimizer
from genlab.training.reporting import Reporter

#: checkpoint ``extra`` entries that describe the writer, not the model (rebuilt at every save)
_WRITER_KEYS = ("best", "runtime", "world_size", "rank_rng", "scalers")


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
    return load_training_set(cfg.data, cfg.train.batch_size)


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


@dataclass
class _PhasePlan:
    """A phase with everything the step needs precomputed (no per-step lookups or list building)."""

    phase: Phase
    optimizer: torch.optim.Optimizer
    scaler: Optional[torch.amp.GradScaler]
    trains: frozenset
    nets_view: Optional[Mapping]  # ctx.nets during this phase under DDP (trained networks through DDP)


class Trainer:
    def __init__(self, cfg: Config, run: RunDir, data: ImageData, *, resume_from: Optional[Path] = None,
                 rank: int = 0, world_size: int = 1, log: Callable[[str], None] = print,
                 dist_ctx: Optional[distributed.DistContext] = None):
        self.cfg, self.run, self.log = cfg, run, log
        self.dist = dist_ctx or distributed.DistContext(rank=rank, world_size=world_size, local_rank=rank,
                                                        local_world_size=world_size)
        self.rank, self.world_size, self.is_main = self.dist.rank, self.dist.world_size, self.dist.is_main
        if cfg.train.batch_size % self.world_size:
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} is the global batch and must divide evenly "
                              f"over {self.world_size} ranks; use a multiple of {self.world_size}")
        if self.dist.enabled and not torch.distributed.is_initialized():
            raise ConfigError(f"world_size={self.world_size} needs an initialised process group; launch with "
                              "torchrun (see docs/scaling.md), which `genlab train` joins by itself")
        self.batch_size = cfg.train.batch_size  # global: all ranks together
        self.local_batch_size = cfg.train.batch_size // self.world_size
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled:
            self.device = self.dist.device(cfg.train.device)
        self.spec = MODELS.get(cfg.model.name)
        self.num_classes = cfg.model.num_classes or data.num_classes
        self.class_names = list(data.class_names)
        torch.manual_seed(cfg.train.seed)
        self.nets: nn.ModuleDict = build_networks(cfg, self.num_classes).to(self.device)
        self.objective = build_objective(cfg)
        self.ctx = self.objective.context(self.nets, self.device, self.num_classes)
        self.extra: dict = {"num_classes": self.num_classes, "class_names": self.class_names}
        self.objective_setup(data)
        self.runtime = perf.resolve_runtime(cfg.train, self.device, self.nets, world_size=self.world_size,
                                            local_world_size=self.dist.local_world_size)
        perf.apply_process_settings(self.runtime)
        perf.prepare_networks(self.nets, self.runtime)  # SyncBatchNorm, channels_last
        self._opt_options = {}
        self.optimizers = {}
        for name, (owns, ocfg) in self.objective.optimizers().items():
            self._opt_options[name] = perf.optimizer_options(ocfg, self.runtime)
            params = [p for n in owns for p in self.nets[n].parameters()]
            self.optimizers[name] = make_optimizer(params, ocfg, **self._opt_options[name])
        self.scalers = perf.make_scalers(self.optimizers, self.runtime)
        self.phases = self.objective.phases()
        self.ema = (EMA(self.nets["G"], cfg.train.ema, cfg.train.ema_warmup).to(self.device) if cfg.train.ema > 0
                    else None)
        perf.compile_networks(self.nets, self.runtime)  # after EMA: its copy stays a plain module
        synced = ddp.wrap_ddp(self.nets, self.device) if self.dist.enabled else {}
        if synced:
            self.dist.hold(self.release_ddp)
        views = ddp.phase_views(self.nets, synced, self.phases) if synced else {}
        self._plan = [_PhasePlan(ph, self.optimizers[ph.optimizer], self.scalers[ph.optimizer],
                                 frozenset(ph.trains), views.get(ph.name)) for ph in self.phases]
        self._params = {k: list(net.parameters()) for k, net in self.nets.items()}
        self._trainable: Optional[frozenset] = None  # networks whose parameters require grad right now
        if self.dist.rank:  # own noise/dropout stream per rank (rank 0 keeps the single-process stream)
            torch.manual_seed(cfg.train.seed * 1_000_003 + self.dist.rank)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device) if data.labels is not None else None
        self.steps_per_epoch = len(data) // cfg.train.batch_size
        self.step = self.epoch = self.step_in_epoch = 0
        self.best: Optional[float] = None
        self.epoch_end_hooks: list[Callable[["Trainer", int], None]] = []
        if resume_from is not None:
            self._restore(load_checkpoint(resume_from, self.device), resume_from)
        self.fixed = self._fixed_noise()
        self.reporter = Reporter(run.metrics, run.tb if cfg.log.tensorboard else None, resume_step=self.step,
                                 enabled=self.is_main, reduce=distributed.mean_over_ranks if self.dist.enabled
                                 else None)
        if self.is_main:
            atomic_write_text(run.path / "runtime.json", json.dumps(self.runtime.as_dict(), indent=1))

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

    def _restore(self, ckpt: dict, path: Optional[Path] = None) -> None:
        extra = ckpt.get("extra", {}) or {}
        saved_world = int(extra.get("world_size", 1))
        if saved_world != self.world_size:
            raise RunError(f"checkpoint {path or ''} was written by a run on {saved_world} process(es) "
                           f"(world_size) and this one has {self.world_size}; resume with the same number of "
                           f"processes (torchrun --nproc_per_node/--nnodes giving world_size {saved_world}), "
                           "or start a new run from its weights")
        for k, sd in ckpt["nets"].items():
            self.nets[k].load_state_dict(sd)
        for k, sd in ckpt["optimizers"].items():
            self.optimizers[k].load_state_dict(sd)
            perf.retarget_optimizer(self.optimizers[k], self._opt_options[k])
        for k, sd in (extra.get("scalers") or {}).items():
            if self.scalers.get(k) is not None:
                self.scalers[k].load_state_dict(sd)
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.load_state_dict(ckpt["ema"], updates=ckpt["step"])
        self.step, self.epoch, self.step_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["step_in_epoch"]
        self.best = extra.get("best")
        self.extra.update({k: v for k, v in extra.items() if k not in _WRITER_KEYS})
        set_rng_state(extra["rank_rng"][self.rank] if self.dist.enabled else ckpt["rng"])

    def save(self) -> Path:
        """Write a checkpoint (rank 0; every rank must call it: it gathers each rank's RNG state)."""
        path = self.run.checkpoints / f"step_{self.step:09d}.pt"
        rank_rng = distributed.all_gather_objects(rng_state()) if self.dist.enabled else None
        if self.is_main:
            extra = {**self.extra, "best": self.best, "runtime": self.runtime.as_dict(),
                     "world_size": self.world_size}
            if rank_rng is not None:
                extra["rank_rng"] = rank_rng
            if any(s is not None for s in self.scalers.values()):
                extra["scalers"] = {k: s.state_dict() for k, s in self.scalers.items() if s is not None}
            save_checkpoint(path, nets=self.nets, optimizers=self.optimizers, ema=self.ema, step=self.step,
                            epoch=self.epoch, step_in_epoch=self.step_in_epoch, config=to_dict(self.cfg),
                            extra=extra)
            prune(self.run.checkpoint_files(), self.cfg.log.keep_checkpoints)
        return path

    def status(self, state: str, **kw) -> None:
        if self.is_main:
            atomic_write_text(self.run.path / "status.json", json.dumps(
                {"state": state, "step": self.step, "epoch": self.epoch, "epochs": self.cfg.train.epochs,
                 "genlab_version": __version__, "runtime": self.runtime.as_dict(), **kw}, indent=1))

    @property
    def generator(self) -> nn.Module:
        return self.ema.net if self.ema is not None else self.nets["G"]

    @torch.inference_mode()
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
        extra = getattr(self.objective, "sample_images", None)
        for tag, imgs in (extra(self) if extra is not None else {}).items():  # e.g. a VAE's reconstructions
            self.reporter.image(tag, save_grid(imgs, self.run.samples / f"{tag}_epoch_{epoch:04d}.png"), self.step)

    # ------------------------------------------------------------------------------------------ loop
    def lrs(self) -> dict[str, float]:
        return {k: o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

    def _set_trainable(self, trains: frozenset) -> None:
        """Freeze the networks a phase does not train; only networks whose state changes are touched."""
        current = self._trainable
        for name, params in self._params.items():
            want = name in trains
            if current is None or (name in current) != want:
                for p in params:
                    p.requires_grad_(want)
        self._trainable = trains

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        stats: dict[str, torch.Tensor] = {}
        ctx = self.ctx
        ctx.cache.clear()
        nets = ctx.nets
        autocast = self.runtime.autocast
        try:
            for plan in self._plan:
                phase, opt, scaler = plan.phase, plan.optimizer, plan.scaler
                if self._trainable is not plan.trains:
                    self._set_trainable(plan.trains)
                if plan.nets_view is not None:
                    ctx.nets = plan.nets_view
                for _ in range(phase.repeat):
                    opt.zero_grad(set_to_none=True)
                    with autocast():
                        loss, s = phase.fn(batch, ctx)
                    if scaler is None:
                        loss.backward()
                        opt.step()
                    else:
                        scaler.scale(loss).backward()
                        scaler.step(opt)
                        scaler.update()
                    if phase.after is not None:
                        phase.after(ctx)
                stats.update(s)
        finally:
            ctx.nets = nets
        if self.ema is not None:
            self.ema.update(self.nets["G"])
        return stats

    def batch_at(self, perm: torch.Tensor, step_in_epoch: int) -> Batch:
        """This rank's share of global batch ``step_in_epoch`` of an epoch, normalised, in the run's layout."""
        lo = step_in_epoch * self.batch_size + self.rank * self.local_batch_size
        idx = perm[lo:lo + self.local_batch_size]
        return Batch(perf.input_batch(self.images[idx], self.runtime),
                     self.labels[idx] if self.labels is not None else None, idx=idx)

    def release_ddp(self) -> None:
        """Drop the DDP wrappers (the networks stay): their reducers hold the process group (DistContext.hold)."""
        self._plan = [replace(p, nets_view=None) for p in self._plan]

    def fit(self) -> None:
        cfg, bs = self.cfg, self.batch_size
        max_steps = cfg.train.max_steps
        self.nets.train()
        self.status("running")
        self._trainable = None  # someone may have touched requires_grad since the last fit
        try:
            with _StopFlag() as stop:
                while self.epoch < cfg.train.epochs and not (max_steps and self.step >= max_steps):
                    perm = epoch_permutation(cfg.train.seed, self.epoch, len(self.images)).to(self.device)
                    self.reporter.reset_clock()
                    while self.step_in_epoch < self.steps_per_epoch:
                        stats = self.train_step(self.batch_at(perm, self.step_in_epoch))
                        self.step += 1
                        self.step_in_epoch += 1
                        self.reporter.add(self.step, stats, bs)
                        if self.on_step is not None:
                            self.on_step(self)
                        stopping = stop.set
                        if self.step % cfg.log.every_steps == 0:
                            self._flush()
                            if self.dist.enabled:  # ranks agree on Ctrl-C at window boundaries
                                stopping = distributed.any_rank(stop.set)
                        elif self.dist.enabled:
                            stopping = False
                        if stopping:
                            self._flush()
                            self._sync_ranks()
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

    def _sync_ranks(self) -> None:
        """Several ranks: rank 0's buffers everywhere (CPU has no SyncBatchNorm), and a check that DDP kept the
        weights identical (a phase calling a submodule directly would bypass its gradient all-reduce)."""
        if not self.dist.enabled:
            return
        ddp.broadcast_buffers(self.nets)
        if self.ema is not None:
            ddp.broadcast_buffers(self.ema)
        bad = ddp.out_of_sync(self.nets)
        if bad:
            raise RuntimeError(f"the weights of {', '.join(bad)} differ between ranks after step {self.step}: a "
                               "phase probably calls a submodule of a trained network directly (DDP only "
                               "synchronises calls of the network and its own methods)")

    def _end_of_epoch(self, final: bool) -> None:
        e, lg = self.epoch, self.cfg.log
        self._sync_ranks()
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


def _quiet(*_args, **_kwargs) -> None:
    return None


def train(cfg: Config, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
          log: Callable[[str], None] = print, hooks: tuple = ()) -> Trainer:
    """Train (or resume) one run; returns the finished trainer. The CLI calls exactly this.

    Under torchrun (RANK / WORLD_SIZE set) every process calls this; they join one process group, rank 0
    prepares and writes the run folder, and all ranks train one model with DDP (docs/scaling.md).
    """
    with distributed.setup(cfg.train.device) as dist_ctx:
        if not dist_ctx.is_main:
            log = _quiet
        run = RunDir.of(run_dir)

        def prepare_folder() -> None:
            if resume:
                run.require()
                atomic_write_text(run.config, to_yaml(cfg))
            else:
                prepare_run(cfg, run_dir, overwrite)

        distributed.run_on_main(prepare_folder)  # an error there is raised on every rank
        resume_from = None
        if resume:
            files = run.require().checkpoint_files()
            resume_from = files[-1] if files else None
            if resume_from is not None:
                log(f"resuming from {resume_from}")
        data = load_training_data(cfg)
        trainer = Trainer(cfg, run, data, resume_from=resume_from, rank=dist_ctx.rank,
                          world_size=dist_ctx.world_size, log=log, dist_ctx=dist_ctx)
        log(f"runtime: {trainer.runtime.describe()}")
        for h in hooks:
            h(trainer)
        progress = contextlib.nullcontext()
        if cfg.log.progress and trainer.is_main:
            from genlab.training.progress import TrainingProgress

            progress = TrainingProgress(trainer)
        with progress:
            trainer.fit()
    return trainer
