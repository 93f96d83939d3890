"""A Rich progress bar (a training callback): epoch, step, images/s, ETA and the latest losses."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from genlab.training.callbacks import Callback

if TYPE_CHECKING:  # annotations only: the loop imports this module
    from genlab.training.loop import Trainer


class ProgressBar(Callback):
    def __init__(self, console: Console | None = None):
        self.console = console
        self.progress: Progress | None = None
        self.task = None

    def on_fit_start(self, trainer: Trainer) -> None:
        cfg, state = trainer.cfg, trainer.state
        total = trainer.batches.steps_per_epoch * cfg.train.epochs
        if cfg.train.max_steps:
            total = min(total, cfg.train.max_steps)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[ips]} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=self.console, transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=total, completed=state.step, epoch=state.epoch + 1,
                                           epochs=cfg.train.epochs, ips="-", losses="")
        self.progress.start()

    def on_step_end(self, trainer: Trainer) -> None:
        self.progress.update(self.task, completed=trainer.state.step, epoch=trainer.state.epoch + 1)

    def on_record(self, trainer: Trainer, record: dict) -> None:
        if "kind" in record:  # an evaluation record: no losses, no speed
            return
        losses = "  ".join(f"{k} {v:.3f}" for k, v in record.items()
                           if k.startswith(("loss", "D(")) and isinstance(v, float))
        self.progress.update(self.task, ips=f"{record.get('time/images_per_s', 0):.0f}", losses=losses)

    def on_fit_end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
