"""What happens around the training loop, as callbacks: records (metrics.jsonl), the status file, sample
grids, checkpoints (progress_bar.py: the progress bar; evaluation.py: metrics during training and best.pt;
genlab.trackers: TensorBoard, MLflow, W&B).

``loop.fit`` calls, in this order::

    on_fit_start(trainer)
      per step:       on_step_end(trainer)
      per log window: on_record(trainer, record)         (also evaluation records, see Trainer.emit_record)
      per epoch end:  on_epoch_end(trainer, epoch, final)
      per grid:       on_image(trainer, tag, grid)       (Trainer.emit_image)
      per save:       on_checkpoint(trainer, path)       (Trainer.save)
    on_fit_end(trainer, status, error)                  status: finished | stopped | interrupted | diverged | failed

``trainer`` is the ``loop.Trainer`` being fitted (its ``state`` is the ``TrainState``). Callbacks override the
events they need; ``on_step_end`` is only called on callbacks that override it, so an unused event costs no
time per step. Rank 0 writes the run folder: the writers below do nothing on other ranks, while events
reach every rank (an evaluation or a checkpoint needs all of them).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from genlab import __version__
from genlab.data.base import to_float
from genlab.grids import save_grid
from genlab.models.conditioning import grid_labels
from genlab.recipe import image_sampler
from genlab.training.phases import Batch

if TYPE_CHECKING:  # annotations only: the loop imports this module
    from genlab.training.loop import Trainer

#: fit outcomes the status file records ("failed": an exception; the file keeps "running", like a killed run)
RECORDED_OUTCOMES = ("finished", "stopped", "interrupted", "diverged")


class Callback:
    """Base class of training callbacks: every event is a no-op here."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer) -> None:
        pass

    def on_record(self, trainer: Trainer, record: dict) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, final: bool) -> None:
        pass

    def on_image(self, trainer: Trainer, tag: str, grid) -> None:
        pass

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        pass


def overrides(cb: Callback, event: str) -> bool:
    """Whether ``cb`` does something on ``event`` (the loop skips no-op per-step calls)."""
    return getattr(type(cb), event, None) is not getattr(Callback, event)


class RecordWriter(Callback):
    """Records to metrics.jsonl (RunDir.append_record). Experiment trackers (TensorBoard, MLflow, W&B) are the
    callback of ``genlab.trackers``, which ``genlab.train`` adds.

    At the start of a fit, records past the state's step (left by a run killed after its last checkpoint) are
    dropped.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.is_main:
            trainer.run.truncate_records(trainer.state.step)

    def on_record(self, trainer: Trainer, record: dict) -> None:
        if trainer.is_main:
            trainer.run.append_record(record)


class StatusFile(Callback):
    """status.json: running while fitting, then how the fit ended (RunDir.write_status); a finished fit also
    records the budget that ended it (``ended_by``, e.g. ``train.minutes=10``: see training/budget.py)."""

    def _write(self, trainer: Trainer, state: str, **fields) -> None:
        if trainer.is_main:
            s = trainer.state
            trainer.run.write_status(state, step=s.step, epoch=s.epoch, epochs=trainer.cfg.train.epochs,
                                     genlab_version=__version__, runtime=trainer.runtime.as_dict(), **fields)

    def on_fit_start(self, trainer: Trainer) -> None:
        self._write(trainer, "running")

    def on_fit_end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        if status in RECORDED_OUTCOMES:
            fields = {"error": error} if error is not None else {}
            if status == "finished":  # which budget ended it (steps, epochs or minutes): the report says so
                s = trainer.state
                budget = trainer.budget
                fields["ended_by"] = budget.describe(budget.ended_by(s.step, s.epoch, s.seconds))
            self._write(trainer, status, **fields)


class SampleGrids(Callback):
    """Fixed-noise grids (samples/epoch_XXXX.png) every ``log.sample_every`` epochs and at the end, plus the
    objective's own images (a VAE's reconstructions). The noise is noise.pt, so a resumed run draws the same; flow
    and diffusion models integrate it with the run's default sampler (the same ODE every time)."""

    def __init__(self) -> None:
        self.fixed: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.fixed is None and trainer.is_main:
            self.fixed = fixed_noise(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int, final: bool) -> None:
        every = trainer.cfg.log.sample_every
        if trainer.is_main and (final or (every and epoch % every == 0)):
            self.write(trainer, epoch)

    @torch.inference_mode()
    def write(self, trainer: Trainer, epoch: int) -> None:
        G = trainer.state.generator
        fixed = self.fixed
        was_training = G.training
        G.eval()
        # noise.pt holds the grid's labels for any labeled run; only conditional networks are given them
        cond = trainer.spec.conditioning
        y = fixed.get("y") if cond.conditional else None
        images = image_sampler(trainer.cfg)(G, fixed["z"], y, cond.without(y))
        G.train(was_training)
        trainer.emit_image("samples", save_grid(images, trainer.run.sample_path(epoch)))
        n = max(1, min(trainer.cfg.log.num_samples // 2, len(trainer.batches.images)))
        labels = trainer.batches.labels
        real = Batch(to_float(trainer.batches.images[:n]), labels[:n] if labels is not None else None)
        for tag, imgs in trainer.objective.sample_images(trainer.state.nets, G, real).items():  # e.g. a VAE's
            # reconstructions (none for most objectives)
            trainer.emit_image(tag, save_grid(imgs, trainer.run.sample_path(epoch, tag)))


def fixed_noise(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The run's fixed noise (noise.pt), drawn from the seed on the first fit and saved."""
    run, cfg = trainer.run, trainer.cfg
    fixed = run.load_noise()
    if fixed is None:
        g = torch.Generator().manual_seed(cfg.train.seed)
        n = cfg.log.num_samples
        fixed = {"z": torch.randn(n, cfg.model.latent_dim, generator=g)}
        y = grid_labels(n, trainer.num_classes)
        if y is not None:
            fixed["y"] = y
        run.save_noise(fixed)
    return {k: v.to(trainer.device) for k, v in fixed.items()}


class Checkpoints(Callback):
    """A checkpoint every ``log.checkpoint_every`` epochs and at the end (requested here; ``fit`` writes it once
    on every rank, after all callbacks)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, final: bool) -> None:
        if final or epoch % trainer.cfg.log.checkpoint_every == 0:
            trainer.request_checkpoint()
