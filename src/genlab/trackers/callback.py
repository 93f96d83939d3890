"""The training callback that feeds the trackers of ``log.trackers`` (``genlab.train`` adds it).

A tracker that fails (its server gone, its disk full) gets one warning line and nothing more for the rest of the
fit; the training and the run folder go on untouched, since every record, grid and checkpoint is written to
the run folder first (metrics.jsonl, samples/, checkpoints/) by the standard callbacks.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab import signals
from genlab.config import Config, to_dict
from genlab.errors import GenlabError
from genlab.export import export_generator
from genlab.trackers.base import TRACKERS, Tracker, TrackerStart
from genlab.training.callbacks import Callback

if TYPE_CHECKING:
    from genlab.training.loop import Trainer

#: record keys that are the record's position, not a measurement
POSITION_KEYS = ("step", "epoch")
#: what a guarded call returns when its tracker failed
FAILED = object()
#: the most of a tracker's error message the warning quotes (an HTTP error names the whole request)
DETAIL_CHARS = 200


def chosen_trackers(cfg: Config) -> list[str]:
    """``log.trackers`` in order without repeats; ``log.tensorboard=false`` takes tensorboard out."""
    names = list(dict.fromkeys(cfg.log.trackers))
    return [n for n in names if n != "tensorboard" or cfg.log.tensorboard]


def numbers(record: dict) -> dict[str, float]:
    """The finite measurements of a metrics.jsonl record (losses, D outputs, images/s, lr, metrics)."""
    return {k: float(v) for k, v in record.items()
            if k not in POSITION_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def _interrupted(e: BaseException) -> bool:
    """A Ctrl-C that a tracker library's own ``except`` turned into another error (genlab.signals)."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return signals.received()


class Trackers(Callback):
    """Sends the fit to each tracker of ``names`` (``TRACKERS``): config, records, grids, the final export and
    eval.json, the status. Rank 0 only. Constructing it imports each tracker's package, so a missing one is a
    one-line ConfigError before any work."""

    def __init__(self, names: Sequence[str]):
        self.trackers: list[Tracker] = []
        for name in names:
            cls = TRACKERS.get(name)
            cls.require()
            self.trackers.append(cls())
        self.active: list[Tracker] = []
        self._log: Callable[[str], None] = print
        self._step = 0

    @classmethod
    def of(cls, cfg: Config) -> Trackers:
        return cls(chosen_trackers(cfg))

    # ------------------------------------------------------------------------------------- one call, guarded
    def _call(self, tracker: Tracker, what: str, fn: Callable, *args) -> Any:
        """``fn(*args)``; on an error, one warning, ``tracker`` is dropped for the rest of the fit and the
        result is FAILED."""
        if tracker not in self.active:
            return FAILED
        try:
            with tracker.quiet():
                return fn(*args)
        except Exception as e:
            if _interrupted(e):
                raise KeyboardInterrupt from e
            self.active.remove(tracker)
            detail = " ".join(str(e).split())
            detail = detail if len(detail) <= DETAIL_CHARS else detail[:DETAIL_CHARS - 3] + "..."
            self._log(f"warning: the {tracker.name} tracker failed {what} at step {self._step} "
                      f"({type(e).__name__}: {detail}); it gets nothing more from this run and training goes on; "
                      "the run folder keeps everything (metrics.jsonl, samples/, checkpoints/)")
            return FAILED

    # ------------------------------------------------------------------------------------- events
    def on_fit_start(self, trainer: Trainer) -> None:
        self.active = []
        if not trainer.is_main:
            return
        self._log, self._step = trainer.log, trainer.state.step
        run, config = trainer.run, to_dict(trainer.cfg)
        saved_ids = run.read_tracker_ids()
        for tracker in self.trackers:
            self.active.append(tracker)
            saved = saved_ids.get(tracker.name)
            start = TrackerStart(run=run, cfg=trainer.cfg, config=config, step=self._step, saved=saved,
                                 log=trainer.log)
            ids = self._call(tracker, "to start", tracker.start, start)
            if ids is FAILED or ids is None or ids == saved:
                continue
            run.write_tracker_ids(tracker.name, ids)
            if self._step > 0:  # a new tracker run for a run that has trained: it gets the records so far
                for record in run.read_records():
                    if not self._send(tracker, record):
                        break

    def _send(self, tracker: Tracker, record: dict) -> bool:
        step = int(record.get("step", self._step))
        if self._call(tracker, "to log a record", tracker.log_metrics, step, numbers(record)) is FAILED:
            return False
        if record.get("kind") == "eval":
            return self._call(tracker, "to log an evaluation", tracker.log_evaluation, step, record) is not FAILED
        return True

    def on_record(self, trainer: Trainer, record: dict) -> None:
        self._step = int(record.get("step", trainer.state.step))
        for tracker in list(self.active):
            self._send(tracker, record)

    def on_image(self, trainer: Trainer, tag: str, grid) -> None:
        self._step = trainer.state.step
        for tracker in list(self.active):
            self._call(tracker, f"to log the {tag} grid", tracker.log_image, trainer.state.step, tag, grid)

    def on_fit_end(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        if not self.active:
            return
        self._step = trainer.state.step
        keepers = [t for t in self.active if t.takes_artifacts]
        if status == "finished" and keepers:
            try:
                with tempfile.TemporaryDirectory(prefix="genlab-export-") as tmp:
                    files = self._artifacts(trainer, Path(tmp))
                    for tracker in keepers:
                        self._call(tracker, "to keep the export and eval.json", tracker.log_artifacts, files)
            except OSError as e:  # no room for the temporary folder: the trackers go without the files
                trainer.log(f"warning: the trackers get no export or eval.json: {e}")
        for tracker in list(self.active):
            self._call(tracker, "to record the end of the run", tracker.finish, self._step, status)
        self.active = []

    @staticmethod
    def _artifacts(trainer: Trainer, tmp: Path) -> dict[str, Path]:
        """The final checkpoint's export (genlab.export) and eval.json, those that exist."""
        files: dict[str, Path] = {}
        run = trainer.run
        if run.checkpoint_files():
            try:
                files["export"] = export_generator(run, tmp / "export", "last")
            except (GenlabError, OSError) as e:  # an unreadable checkpoint, a full disk: they get the rest
                trainer.log(f"warning: the trackers get no export: {e}")
        if run.eval_json.is_file():
            files["eval.json"] = run.eval_json
        return files
