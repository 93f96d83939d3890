"""The one training loop, :func:`fit`: a :class:`Trainer` (one run's parts, assembled) stepped through its epochs,
with everything around the steps done by callbacks (callbacks.py). :func:`train` is what the CLI calls.

The parts: the :class:`~genlab.training.state.TrainState` (what a checkpoint holds), the
:class:`~genlab.training.step.TrainStep` (the objective's phases), the :class:`~genlab.training.batches.Batches`
and the log window (reporting.Reporter). Speed settings (precision, channels_last, torch.compile, threads,
fused optimizers) come resolved from ``perf.resolve_runtime``; several processes under torchrun train one run
through ``distributed`` (DDP, the global batch sharded over ranks, rank 0 writing the run folder).
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from genlab import signals
from genlab.checkpoint import load_checkpoint, prune, resume_checkpoint, rng_state, save_checkpoint
from genlab.config import Config, to_yaml
from genlab.data.base import ImageData, data_identity
from genlab.data.loading import load_training_set
from genlab.deletion import remove_created, remove_empty_created, remove_owned_files
from genlab.device import resolve_device
from genlab.errors import ConfigError, Interrupted, TrainingDiverged
from genlab.models import MODELS
from genlab.recipe import build_networks, check_training_fits
from genlab.resume import check_against_checkpoint
from genlab.rundir import RunDir, RunLock
from genlab.sampling import LoadedRun
from genlab.training import ddp, distributed, perf
from genlab.training.batches import Batches, epoch_permutation
from genlab.training.budget import Budget
from genlab.training.callbacks import Callback, Checkpoints, RecordWriter, SampleGrids, StatusFile, overrides
from genlab.training.families import build_objective
from genlab.training.log_window import Reporter
from genlab.training.phases import make_optimizer
from genlab.training.progress_bar import ProgressBar
from genlab.training.schedule import LRSchedule, budget_steps
from genlab.training.state import TrainState, build_ema
from genlab.training.step import TrainStep
from genlab.training.threads import ThreadGovernor

__all__ = ["Trainer", "fit", "train", "prepare_run", "standard_callbacks", "epoch_permutation",
           "load_training_data", "resolve_device"]


def load_training_data(cfg: Config) -> ImageData:
    return load_training_set(cfg.data, cfg.train.batch_size)


class _StopFlag:
    """The first stop signal (Ctrl-C, SIGTERM from `kill` or a scheduler, SIGHUP from a closed terminal) asks the
    loop to checkpoint and stop at the next step boundary; a second one aborts."""

    def __init__(self):
        self.set = False
        self.signum = signal.SIGINT
        self._old: dict = {}

    def __enter__(self):
        self._old = signals.install_handler(self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set, self.signum = True, signum

    def __exit__(self, *exc):
        signals.restore(self._old)


class Trainer:
    """One run ready to train: config, run folder, :class:`TrainState`, the step, the batches, the log window.

    ``resume_from``: a checkpoint to continue from. ``adjust_runtime``: changes the resolved speed settings
    before anything uses them (benchmarks' ablations, e.g. another optimizer implementation).
    """

    def __init__(self, cfg: Config, run: RunDir, data: ImageData, *, resume_from: Path | None = None,
                 rank: int = 0, world_size: int = 1, log: Callable[[str], None] = print,
                 dist_ctx: distributed.DistContext | None = None,
                 adjust_runtime: Callable[[perf.Runtime], perf.Runtime] | None = None):
        self.cfg, self.run, self.log = cfg, run, log
        self.dist = dist_ctx or distributed.DistContext(rank=rank, world_size=world_size, local_rank=rank,
                                                        local_world_size=world_size)
        # the build, in this order (each step reads what the ones before made):
        self._check_world()  # 1. the global batch splits over the ranks; torchrun's process group is up
        nets = self._build_networks(data)  # 2. seed, networks, objective (and its setup on the data)
        self._resolve_speed(nets, adjust_runtime)  # 3. auto -> concrete settings, applied to the networks
        self._build_training_state(nets)  # 4. optimizers, EMA, TrainState; then compile (EMA keeps a plain copy)
        self._build_step(nets)  # 5. DDP, the step; each rank its own random stream from here on
        self._build_batches(data)  # 6. the batches on the device, the budget, the learning-rate schedule
        if resume_from is not None:  # 7. the checkpoint's state over all of it
            self._resume(resume_from)
        self.reporter = Reporter(reduce=distributed.mean_over_ranks if self.dist.enabled else None)
        self.callbacks: list[Callback] = []  # those of the current fit (events the trainer emits reach them)
        self.stop_requested = False
        self.out_of_time = False  # the last fit stopped at train.minutes
        # asked for at an epoch end by the callbacks (Checkpoints, TrainingEval's new best FID); written once, after
        # all of them ran (fit), whatever their order
        self.checkpoint_requested = self.best_requested = False
        if self.is_main:
            self.run.write_runtime(self.runtime.as_dict())

    # ------------------------------------------------------------------------------------- the build steps
    def _check_world(self) -> None:
        world, cfg = self.dist.world_size, self.cfg
        if cfg.train.batch_size % world:
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} is the global batch and must divide evenly "
                              f"over {world} ranks; use a multiple of {world}")
        if self.dist.enabled and not torch.distributed.is_initialized():
            raise ConfigError(f"world_size={world} needs an initialised process group; launch with "
                              "torchrun (see docs/scaling.md), which `genlab train` joins by itself")
        self.device = self.dist.device(cfg.train.device) if self.dist.enabled else resolve_device(cfg.train.device)

    def _build_networks(self, data: ImageData) -> nn.ModuleDict:
        cfg = self.cfg
        self.spec = MODELS.get(cfg.model.name)
        num_classes = cfg.model.num_classes or data.num_classes
        check_training_fits(cfg, num_classes, str(self.device))  # before anything is allocated
        torch.manual_seed(cfg.train.seed)
        nets = build_networks(cfg, num_classes).to(self.device)
        self.objective = build_objective(cfg)
        self.ctx = self.objective.context(nets, self.device, num_classes)
        self.extra: dict = {"num_classes": num_classes, "class_names": list(data.class_names),
                            "data_identity": data_identity(data)}
        self.extra.update(self.objective.setup(data, self.ctx) or {})  # e.g. a text vocabulary from the captions
        return nets

    def _resolve_speed(self, nets: nn.ModuleDict,
                       adjust_runtime: Callable[[perf.Runtime], perf.Runtime] | None) -> None:
        runtime = perf.resolve_runtime(self.cfg.train, self.device, nets, world_size=self.dist.world_size,
                                       local_world_size=self.dist.local_world_size,
                                       double_backward=self.objective.double_backward(), model=self.cfg.model.name)
        self.runtime = adjust_runtime(runtime) if adjust_runtime is not None else runtime
        perf.apply_process_settings(self.runtime)
        perf.prepare_networks(nets, self.runtime)  # SyncBatchNorm, channels_last

    def _build_training_state(self, nets: nn.ModuleDict) -> None:
        options, optimizers = {}, {}
        for name, (owns, ocfg) in self.objective.optimizers().items():
            options[name] = perf.optimizer_options(ocfg, self.runtime)
            optimizers[name] = make_optimizer([p for n in owns for p in nets[n].parameters()], ocfg, **options[name])
        ema = build_ema(self.cfg, nets["G"])
        if ema is not None:
            ema.to(self.device)
        self.state = TrainState(self.cfg, nets, optimizers, perf.make_scalers(optimizers, self.runtime), ema,
                                extra=self.extra, optimizer_options=options, objective=self.objective)
        perf.compile_networks(nets, self.runtime)  # after EMA: its copy stays a plain module

    def _build_step(self, nets: nn.ModuleDict) -> None:
        synced = ddp.wrap_ddp(nets, self.device) if self.dist.enabled else {}
        self.step_fn = TrainStep(self.objective.phases(), self.ctx, self.state.optimizers, self.state.scalers,
                                 ema=self.state.ema, autocast=self.runtime.autocast, synced=synced)
        if synced:
            self.dist.hold(self.step_fn.release_ddp)
        if self.dist.rank:  # own noise/dropout stream per rank (rank 0 keeps the single-process stream)
            torch.manual_seed(self.cfg.train.seed * 1_000_003 + self.dist.rank)

    def _build_batches(self, data: ImageData) -> None:
        t = self.cfg.train
        self.batches = Batches(data.images.to(self.device),
                               data.labels.to(self.device) if data.labels is not None else None,
                               t.batch_size, self.runtime, rank=self.dist.rank, world_size=self.dist.world_size)
        self.budget = Budget.of(t, self.batches.steps_per_epoch)  # steps, epochs, minutes: which ends first
        self.schedule: LRSchedule | None = None  # train.lr_schedule / warmup_steps; None: the rates stay put
        if t.lr_schedule != "constant" or t.warmup_steps:
            base = {name: ocfg.lr for name, (_, ocfg) in self.objective.optimizers().items()}
            self.schedule = LRSchedule(self.state.optimizers, base, t.lr_schedule,
                                       budget_steps(t.epochs, self.batches.steps_per_epoch, t.max_steps),
                                       t.warmup_steps, budget_s=t.minutes * 60.0)

    def _resume(self, checkpoint: Path) -> None:
        # on the CPU: the RNG states must stay CPU byte tensors; weights and optimizer state are copied onto
        # their parameters' device by load_state_dict
        ckpt = load_checkpoint(checkpoint, "cpu")
        check_against_checkpoint(ckpt["config"], self.cfg, source=str(checkpoint), log=self.log,
                                 data=self.extra["data_identity"],
                                 saved_data=(ckpt.get("extra") or {}).get("data_identity"))
        self.state.load_state_dict(ckpt, rank=self.dist.rank, world_size=self.dist.world_size,
                                   source=str(checkpoint))

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def num_classes(self) -> int:
        return int(self.state.extra["num_classes"])

    # ------------------------------------------------------------------------------------- events
    def emit_record(self, record: dict) -> None:
        """Give a record (a training window, an evaluation) to the callbacks (RecordWriter writes it)."""
        for cb in self.callbacks:
            cb.on_record(self, record)

    def emit_image(self, tag: str, grid) -> None:
        """Give an image grid (HWC uint8) to the callbacks (the trackers of genlab.trackers log it)."""
        for cb in self.callbacks:
            cb.on_image(self, tag, grid)

    def request_stop(self) -> None:
        """Ask ``fit`` to return after the current step (no checkpoint); a later fit continues from there.
        Under DDP every rank must ask at the same step."""
        self.stop_requested = True

    def live_run(self, epoch: int) -> LoadedRun:
        """The networks being trained as a run to draw from (evaluation during training): the EMA generator when
        there is one, on the training device; nothing is copied, and the caller sets the eval/train modes."""
        s = self.state
        return LoadedRun(run=self.run, cfg=self.cfg, spec=self.spec, nets=s.nets,
                         checkpoint=Path(f"(training step {s.step})"), step=s.step, epoch=epoch, extra=s.extra,
                         ema=s.ema.net if s.ema is not None else None, device=self.device)

    def request_checkpoint(self, best: bool = False) -> None:
        """Ask for this epoch end's checkpoint (``best``: also kept as best.pt); ``fit`` writes it once, after every
        callback's ``on_epoch_end``. Under DDP every rank must ask alike."""
        self.checkpoint_requested = True
        self.best_requested = self.best_requested or best

    def save(self) -> Path:
        """Write a checkpoint (rank 0; every rank must call it: it gathers each rank's RNG state), and best.pt when
        it was requested as the best."""
        state = self.state
        path = self.run.step_checkpoint(state.step)
        rank_rng = distributed.all_gather_objects(rng_state()) if self.dist.enabled else None
        best, self.checkpoint_requested, self.best_requested = self.best_requested, False, False
        if self.is_main:
            save_checkpoint(path, state.state_dict(runtime=self.runtime.as_dict(), world_size=self.dist.world_size,
                                                   rank_rng=rank_rng))
            if best:
                self.run.keep_as_best(path)
            prune(self.run.checkpoint_files(), self.cfg.log.keep_checkpoints)
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)
        return path

    # ------------------------------------------------------------------------------------- loop helpers
    def lrs(self) -> dict[str, float]:
        return {k: o.param_groups[0]["lr"] for k, o in self.state.optimizers.items()}

    def flush(self) -> None:
        """Close the log window (raises TrainingDiverged on a non-finite value) and emit its record."""
        rec = self.reporter.flush(self.state.epoch + 1, self.lrs())
        if rec:
            self.emit_record(rec)

    def sync_ranks(self) -> None:
        """Several ranks: rank 0's buffers everywhere (CPU has no SyncBatchNorm), and a check that DDP kept the
        weights identical (a phase calling a submodule directly would bypass its gradient all-reduce)."""
        if not self.dist.enabled:
            return
        nets = self.state.nets
        ddp.broadcast_buffers(nets)
        if self.state.ema is not None:
            ddp.broadcast_buffers(self.state.ema)
        bad = ddp.out_of_sync(nets)
        if bad:
            raise RuntimeError(f"the weights of {', '.join(bad)} differ between ranks after step "
                               f"{self.state.step}: a phase probably calls a submodule of a trained network "
                               "directly (DDP only synchronises calls of the network and its own methods)")


def standard_callbacks(trainer: Trainer, extra: Sequence[Callback] = ()) -> list[Callback]:
    """What every run does around its steps, with ``extra`` (e.g. evaluation.TrainingEval; genlab.train adds the
    trackers of ``log.trackers`` there). The epoch's checkpoint is written by ``fit`` after all of them, once."""
    cbs: list[Callback] = [RecordWriter(), StatusFile()]
    if trainer.runtime.adaptive_threads:  # first: it notes a thread change in the record the writer writes
        cbs.insert(0, ThreadGovernor(trainer.runtime.threads, trainer.log))
    if trainer.cfg.log.progress and trainer.is_main:
        cbs.append(ProgressBar())
    return [*cbs, SampleGrids(), *extra, Checkpoints()]


def stop_reason(trainer: Trainer, signalled: bool, seconds: float, *, decided: bool = True) -> str | None:
    """Why :func:`fit` stops after the step just taken, or None to go on: the one place that decides it.

    "interrupted": Ctrl-C or a termination signal (checkpoint now, exit 130); "out of time": ``train.minutes``
    (``seconds``: the training clock, rank 0's under DDP) ends the run like its last epoch; "stopped":
    :meth:`Trainer.request_stop` (return, no checkpoint); "max steps": ``train.max_steps``. The end of the last
    epoch is the loop's own condition. ``decided``: whether ``signalled`` and ``seconds`` are agreed by every rank
    now (under DDP only at log windows; between them only the reasons every rank sees alike count)."""
    if decided and signalled:
        return "interrupted"
    budget_s = trainer.cfg.train.minutes * 60.0
    if decided and budget_s and seconds >= budget_s:
        return "out of time"
    if trainer.stop_requested:
        return "stopped"
    max_steps = trainer.cfg.train.max_steps
    if max_steps and trainer.state.step >= max_steps:
        return "max steps"
    return None


def fit(trainer: Trainer, callbacks: Sequence[Callback] = (), *, standard: bool = True) -> None:
    """Train ``trainer`` from its state to ``train.epochs`` (or ``train.max_steps``).

    ``standard``: add :func:`standard_callbacks` (records, status, progress, grids, checkpoints) around
    ``callbacks``; without it only ``callbacks`` run (benchmarks: nothing is written). The first Ctrl-C
    checkpoints and stops at the next step boundary (Interrupted: exit 130); a non-finite loss raises TrainingDiverged
    naming the step, keeping the last good checkpoint. ``train.minutes``: past that much training time (counted
    over resumes, ``TrainState.seconds``) the fit ends as at ``max_steps`` (final grid and checkpoint) and sets
    ``trainer.out_of_time``; a resume with a larger ``train.minutes`` trains the difference.
    """
    cbs = standard_callbacks(trainer, callbacks) if standard else list(callbacks)
    trainer.callbacks = cbs
    cfg, state, batches, reporter, dist = trainer.cfg, trainer.state, trainer.batches, trainer.reporter, trainer.dist
    bs, max_steps, every = cfg.train.batch_size, cfg.train.max_steps, cfg.log.every_steps
    budget_s = cfg.train.minutes * 60.0
    ctx, schedule = trainer.ctx, trainer.schedule
    trainer.out_of_time = False
    state.nets.train()
    trainer.step_fn.forget_trainable()
    trainer.stop_requested = False
    status, error = "failed", None
    try:
        for cb in cbs:
            cb.on_fit_start(trainer)
        step_fn = trainer.step_fn  # read after on_fit_start: a callback may wrap it
        step_end = [cb.on_step_end for cb in cbs if overrides(cb, "on_step_end")]
        # the seconds the schedule and train.minutes read: under DDP rank 0's, agreed now and at each log window
        # (each rank's own clock would give the ranks different learning rates, hence different weights)
        _, agreed = distributed.agree(False, state.seconds)
        state.seconds = agreed
        if budget_s and state.seconds >= budget_s:
            trainer.log(f"train.minutes={cfg.train.minutes:g} already trained ({state.seconds / 60:.2f} minutes "
                        "in the checkpoint); raise train.minutes to train longer")
            trainer.out_of_time = True
            status = "finished"
            return
        started, seconds0 = time.perf_counter(), state.seconds
        with _StopFlag() as stop:
            while state.epoch < cfg.train.epochs and not (max_steps and state.step >= max_steps):
                perm = batches.permutation(cfg.train.seed, state.epoch)
                reporter.reset_clock()
                while state.step_in_epoch < batches.steps_per_epoch:
                    if schedule is not None:
                        schedule.apply(state.step, agreed)
                    ctx.step = state.step
                    stats = step_fn(batches.at(perm, state.step_in_epoch))
                    state.step += 1
                    state.seconds = seconds0 + (time.perf_counter() - started)
                    if not dist.enabled:
                        agreed = state.seconds
                    state.step_in_epoch += 1
                    reporter.add(state.step, stats, bs)
                    for on_step_end in step_end:
                        on_step_end(trainer)
                    window, signalled = state.step % every == 0, stop.set
                    if window:
                        trainer.flush()
                        if dist.enabled:  # ranks agree on Ctrl-C and the clock at window boundaries
                            signalled, agreed = distributed.agree(stop.set, state.seconds)
                    reason = stop_reason(trainer, signalled, agreed, decided=window or not dist.enabled)
                    if reason == "interrupted":
                        trainer.flush()
                        trainer.sync_ranks()
                        path = trainer.save()
                        status = "interrupted"
                        raise Interrupted(f"interrupted ({signals.describe(stop.signum)}) at step {state.step} "
                                          f"(epoch {state.epoch + 1}); saved checkpoint {path}; continue with "
                                          f"`genlab train --resume {trainer.run.path}`", stop.signum)
                    if reason is not None:
                        trainer.out_of_time = reason == "out of time"
                        break
                if trainer.stop_requested:
                    trainer.flush()
                    status = "stopped"
                    return
                finished_epoch = state.step_in_epoch >= batches.steps_per_epoch
                trainer.flush()
                if finished_epoch:
                    state.epoch += 1
                    state.step_in_epoch = 0
                trainer.sync_ranks()
                final = (state.epoch >= cfg.train.epochs or bool(max_steps and state.step >= max_steps)
                         or trainer.out_of_time)
                for cb in cbs:
                    cb.on_epoch_end(trainer, state.epoch, final)
                if trainer.checkpoint_requested:  # one write, whoever asked (Checkpoints, a new best FID)
                    trainer.save()
                if trainer.out_of_time:
                    trainer.log(f"train.minutes={cfg.train.minutes:g} reached at step {state.step} (epoch "
                                f"{state.epoch + 1}); checkpoint saved; resume with a larger train.minutes to "
                                "train longer")
                    break
        status = "finished"
    except TrainingDiverged as e:
        status, error = "diverged", str(e)
        files = trainer.run.checkpoint_files()
        last = f"the last good checkpoint is {files[-1]}" if files else "no checkpoint was written yet"
        raise TrainingDiverged(f"training diverged: {e}; {last}; try a lower learning rate") from None
    finally:
        for cb in cbs:
            cb.on_fit_end(trainer, status, error)


def prepare_run(cfg: Config, run_dir: str | Path, overwrite: bool = False) -> RunDir:
    """A new run folder with its config (its lock is dropped on return; :func:`train` keeps it instead)."""
    run = RunDir.of(run_dir)
    with run.create(overwrite=overwrite):
        run.write_config(to_yaml(cfg))
    return run


def _quiet(*_args, **_kwargs) -> None:
    return None


class _Created:
    """What this call added to the run folder, so a failure before the first step can take it back."""

    def __init__(self, path: Path):
        self.path = path
        self.before = {p.name for p in path.iterdir()} if path.is_dir() else None  # None: the folder is new
        self.new_parents = []  # folders above the run that creating it will make (runs/ of runs/NAME)
        parent = path.absolute().parent
        while not parent.exists():
            self.new_parents.append(parent)
            parent = parent.parent

    def remove(self) -> None:
        remove_created(self.path, self.before)
        if self.before is None:
            remove_empty_created(self.new_parents)  # innermost first; only while empty


def _remove_partial_checkpoints(run: RunDir, log: Callable[[str], None]) -> None:
    """Temporary files of checkpoint writes that a killed process left (``.step_X.pt.<pid>.<rand>.tmp``): under
    the run's lock nothing else writes there, so they are debris, never a checkpoint."""
    partial = sorted(run.checkpoints.glob(".*.tmp")) if run.checkpoints.is_dir() else []
    remove_owned_files(run.checkpoints, ".*.tmp", partial)
    if partial:
        log(f"removed {len(partial)} unfinished checkpoint write(s) a stopped process left in {run.checkpoints}")


def train(cfg: Config, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
          log: Callable[[str], None] = print, callbacks: Sequence[Callback] = ()) -> Trainer:
    """Train (or resume) one run; returns the finished trainer. The CLI calls exactly this.

    ``callbacks`` run with the standard ones (see :func:`standard_callbacks`). Under torchrun (RANK /
    WORLD_SIZE set) every process calls this; they join one process group, rank 0 prepares and writes the run
    folder and holds its lock (RUN/.lock) until the end, and all ranks train one model with DDP
    (docs/scaling.md). A new run that fails before its first step (bad data, a config the networks refuse)
    leaves no folder behind. A resume continues from the newest checkpoint that loads
    (``checkpoint.resume_checkpoint``: a corrupt newest one is set aside and logged).
    """
    with distributed.setup(cfg.train.device) as dist_ctx:
        if not dist_ctx.is_main:
            log = _quiet
        run = RunDir.of(run_dir)
        created = None if resume or not dist_ctx.is_main else _Created(run.path)
        lock: RunLock | None = None
        trainer: Trainer | None = None
        resume_from: Path | None = None

        def nothing_trained() -> None:
            if created is not None and (trainer is None or trainer.state.step == 0) and not run.checkpoint_files():
                created.remove()  # a failure before the first step: take back what this call made

        def prepare_folder() -> str | None:
            """Rank 0: the folder (new, replaced, or resumed) with its lock held, the config written, and for a
            resume the checkpoint to continue from. RunError when another process holds the lock."""
            nonlocal lock
            lock = run.require().lock() if resume else run.create(overwrite=overwrite)
            try:
                took_over = lock.describe_takeover()
                if took_over:
                    log(took_over)
                if resume:  # config.yaml is rewritten only once the Trainer has accepted the resume (below)
                    _remove_partial_checkpoints(run, log)
                else:
                    run.write_config(to_yaml(cfg))
                chosen = resume_checkpoint(run, log) if resume else None  # rank 0 chooses (and sets aside)
            except BaseException:
                nothing_trained()
                lock.release()
                raise
            return str(chosen) if chosen is not None else None

        chosen = distributed.run_on_main(prepare_folder)  # an error there is raised on every rank
        try:
            chosen = distributed.all_gather_objects(chosen)[0]  # rank 0's choice on every rank
            if chosen is not None:
                resume_from = Path(chosen)
                log(f"resuming from {resume_from}")
            data = load_training_data(cfg)
            trainer = Trainer(cfg, run, data, resume_from=resume_from, log=log, dist_ctx=dist_ctx)
            if resume and dist_ctx.is_main:  # the checkpoint and the data accepted the request
                run.write_config(to_yaml(cfg))
            log(f"runtime: {trainer.runtime.describe()}")
            fit(trainer, callbacks)
        except BaseException:
            nothing_trained()
            raise
        finally:
            if lock is not None:
                lock.release()
    return trainer
