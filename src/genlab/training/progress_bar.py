"""A Rich progress bar (a training callback): epoch, step, images/s, ETA and the latest losses.

The bar follows whichever budget ends first (``training/budget.py``): steps (``train.epochs`` x steps per
epoch, or ``train.max_steps``) or the clock (``train.minutes``), so a ``train.minutes`` run's bar reaches 100%
when its minutes are up, and the ETA is the time to the first budget's end (training time: evaluations and
grids between steps are not counted, as ``train.minutes`` does not count them).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from genlab.progress import Progress
from genlab.training.budget import clock
from genlab.training.callbacks import Callback

if TYPE_CHECKING:  # annotations only: the loop imports this module
    from genlab.training.loop import Trainer


class ProgressBar(Callback):
    #: seconds between two updates of the bar's text fields (the bar refreshes 4 times a second anyway)
    UPDATE_S = 0.25

    def __init__(self, console: Console | None = None):
        self.console = console
        self.progress: Progress | None = None
        self.task = None
        self._start: tuple[int, float] = (0, 0.0)  # (step, seconds trained) when this fit started
        self._shown = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        state = trainer.state
        self._start = (state.step, state.seconds)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[where]}"),
            TextColumn("{task.fields[ips]} img/s"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[losses]}"),
            console=self.console, transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=1.0, epochs=trainer.cfg.train.epochs, ips="-", losses="",
                                           **self._fields(trainer))
        self.progress.start()

    def _fields(self, trainer: Trainer) -> dict:
        """Where the run is against each budget, the fraction done (the first budget's) and the ETA."""
        state, budget = trainer.state, trainer.budget
        step0, sec0 = self._start
        per_step = (state.seconds - sec0) / (state.step - step0) if state.step > step0 else None
        where = f"step {state.step}/{budget.steps}"
        if budget.minutes:
            where += f", {clock(state.seconds)}/{clock(budget.seconds)} of train.minutes={budget.minutes:g}"
        return {"completed": budget.progress(state.step, state.seconds), "where": where,
                # the epoch under way; at the end, the last one (not one past train.epochs)
                "epoch": min(state.epoch + 1, trainer.cfg.train.epochs),
                "eta": clock(budget.remaining_s(state.step, state.seconds, per_step))}

    def on_step_end(self, trainer: Trainer) -> None:
        now = time.monotonic()
        if now - self._shown >= self.UPDATE_S:
            self._shown = now
            self.progress.update(self.task, **self._fields(trainer))

    def on_epoch_end(self, trainer: Trainer, epoch: int, final: bool) -> None:
        self.progress.update(self.task, **self._fields(trainer))

    def on_record(self, trainer: Trainer, record: dict) -> None:
        if "kind" in record:  # an evaluation record: no losses, no speed
            return
        losses = "  ".join(f"{k} {v:.3f}" for k, v in record.items()
                           if k.startswith(("loss", "D(")) and isinstance(v, float))
        self.progress.update(self.task, ips=f"{record.get('time/images_per_s', 0):.0f}", losses=losses)

    def on_fit_end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        if self.progress is not None:
            self.progress.update(self.task, **self._fields(trainer))  # the last step's numbers, not 0.25 s old ones
            self.progress.stop()
            self.progress = None
