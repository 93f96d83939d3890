"""TensorBoard (the default tracker): event files in the run's tb/ folder (`tensorboard --logdir runs`).

A resumed fit purges the events past the step it continues from, so a run killed after its last checkpoint
shows no duplicate steps. The config and each evaluation's protocol are text entries; the end status too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genlab.trackers.base import Tracker, TrackerStart, register_tracker


@register_tracker
class TensorBoardTracker(Tracker):
    name = "tensorboard"
    package = None  # a base dependency of genlab
    takes_artifacts = False  # TensorBoard keeps no files; the export and eval.json stay in the run folder

    def __init__(self) -> None:
        self.writer = None

    def start(self, s: TrackerStart) -> dict | None:
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when TensorBoard is on

        self.writer = SummaryWriter(str(s.run.tb), purge_step=s.step + 1 if s.step > 0 else None)
        yaml = s.run.read_config_text()
        if yaml:
            self.writer.add_text("config", "```\n" + yaml + "```", s.step)
        return None  # the events live in the run folder: nothing to remember

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def log_evaluation(self, step: int, record: dict) -> None:
        self.writer.add_text("evaluation", "```\n" + json.dumps(record, indent=1) + "\n```", step)

    def log_image(self, step: int, tag: str, grid: np.ndarray) -> None:
        self.writer.add_image(tag, grid, step, dataformats="HWC")

    def log_artifacts(self, files: dict[str, Path]) -> None:
        pass

    def finish(self, step: int, status: str) -> None:
        if self.writer is None:
            return
        self.writer.add_text("status", status, step)
        self.writer.flush()
        self.writer.close()
        self.writer = None
