"""Weights & Biases (``pip install 'genlab[wandb]'``). ``WANDB_MODE=offline`` works with no account and no
network: the run is written under ``<folder of the run>/wandb/`` (or ``$WANDB_DIR``) and ``wandb sync`` uploads it
later; online, run ``wandb login`` first.

What: one W&B run per genlab run, named after the run folder, in project ``log.experiment``; the resolved config
as the run config; every record at its step (W&B's step is genlab's); each evaluation record, protocol included,
as the file ``evaluations/step_XXXXXXXXX.json`` and its protocol in the summary (``eval_protocol``); the grids as
images; the final export and eval.json as one ``model`` artifact, ``generator-<run id>``; the end as the
summary's ``genlab_status`` and the run's exit code (0 for finished). A resume passes the saved run id with
``resume="allow"``; offline, each part is its own folder with that id and ``wandb sync`` joins them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from genlab.trackers.base import Tracker, TrackerStart, register_tracker


@register_tracker
class WandbTracker(Tracker):
    name = "wandb"
    package = "wandb"
    extra = "wandb"

    def __init__(self) -> None:
        self.run: Any = None

    def start(self, s: TrackerStart) -> dict | None:
        import wandb

        saved_id = (s.saved or {}).get("id")
        # console="off": genlab's progress bar and log lines stay as they are; create_new: a run of the user's own
        # in this process is neither finished nor reused
        settings = wandb.Settings(console="off", disable_git=True, silent=True, reinit="create_new")
        kwargs: dict[str, Any] = {}
        if not os.environ.get("WANDB_DIR"):
            kwargs["dir"] = str(s.run.path.absolute().parent)
        self.run = wandb.init(project=s.cfg.log.experiment, name=s.run.path.name, config=s.config,
                              id=saved_id or None, resume="allow" if saved_id else None, settings=settings, **kwargs)
        if saved_id:  # a resume may change the keys genlab.resume allows (train.epochs, log.*, ...)
            self.run.config.update(s.config, allow_val_change=True)
        folder = Path(self.run.dir).parent
        s.log(f"wandb: offline run {self.run.id} in {folder}; upload it with `wandb sync {folder}`" if self.run.offline
              else f"wandb: run {self.run.id} at {self.run.url}")
        return {"id": self.run.id, "project": self.run.project}

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def log_evaluation(self, step: int, record: dict) -> None:
        path = Path(self.run.dir) / "evaluations" / f"step_{step:09d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
        self.run.save(str(path), base_path=self.run.dir, policy="now")
        self.run.summary["eval_protocol"] = record.get("protocol")

    def log_image(self, step: int, tag: str, grid: np.ndarray) -> None:
        import wandb

        self.run.log({tag: wandb.Image(grid[..., 0] if grid.shape[-1] == 1 else grid)}, step=step)

    def log_artifacts(self, files: dict[str, Path]) -> None:
        import wandb

        if not files:
            return
        artifact = wandb.Artifact(f"generator-{self.run.id}", type="model")
        for name, path in files.items():  # copied into W&B's staging area now (the export is a temporary folder)
            if path.is_dir():
                artifact.add_dir(str(path), name=name)
            else:
                artifact.add_file(str(path), name=name)
        self.run.log_artifact(artifact)

    def finish(self, step: int, status: str) -> None:
        self.run.summary["genlab_status"] = status
        self.run.finish(exit_code=0 if status == "finished" else 1)
        self.run = None
