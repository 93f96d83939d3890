"""A Rich progress bar: epoch, step, images/s, ETA and the latest losses."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    def __init__(self, trainer, console: Console | None = None):
        self.trainer = trainer
        cfg = trainer.cfg
        total = trainer.steps_per_epoch * cfg.train.epochs
        if cfg.train.max_steps:
            total = min(total, cfg.train.max_steps)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[ips]} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=console, transient=False, refresh_per_second=4,
        )
        self.task = self.progress.add_task("train", total=total, completed=trainer.step, epoch=trainer.epoch + 1,
                                           epochs=cfg.train.epochs, ips="-", losses="")

    def __enter__(self):
        self.progress.start()
        prev_step = self.trainer.on_step
        prev_rec = self.trainer.on_record

        def on_step(t):
            self.progress.update(self.task, completed=t.step, epoch=t.epoch + 1)
            if prev_step:
                prev_step(t)

        def on_record(rec):
            losses = "  ".join(f"{k} {v:.3f}" for k, v in rec.items()
                               if k.startswith(("loss", "D(")) and isinstance(v, float))
            self.progress.update(self.task, ips=f"{rec.get('time/images_per_s', 0):.0f}", losses=losses)
            if prev_rec:
                prev_rec(rec)

        self.trainer.on_step = on_step
        self.trainer.on_record = on_record
        return self

    def __exit__(self, *exc):
        self.progress.stop()
