"""The log window: per-step scalars accumulated as tensors, averaged into one record per window.

Scalars are synchronised once per window (``log.every_steps``), so the training step never waits on
``.item()``; the loop hands each record to the callbacks (callbacks.RecordWriter writes metrics.jsonl; the
trackers of genlab.trackers send it to TensorBoard, MLflow, W&B). Keys under ``time/`` are wall-clock figures
(they differ between otherwise identical runs); every other key is a deterministic function of config and seed.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from genlab.errors import TrainingDiverged


class Reporter:
    def __init__(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.reduce = reduce  # e.g. the mean over DDP ranks of the stacked window (every rank calls flush)
        self._window: dict[str, list[torch.Tensor]] = {}
        self._window_steps: list[int] = []
        self._window_images = 0
        self._t0 = time.perf_counter()
        self.last: dict[str, float] = {}  # the latest record

    def add(self, step: int, stats: dict[str, torch.Tensor], images: int) -> None:
        """Record one training step's scalars (tensors; no sync here)."""
        for k, v in stats.items():
            self._window.setdefault(k, []).append(v.detach())
        self._window_steps.append(step)
        self._window_images += images

    def flush(self, epoch: int, lrs: dict[str, float]) -> dict[str, float]:
        """Average the window and check it is finite: the window's record (empty when no step was added)."""
        if not self._window_steps:
            return {}
        keys = list(self._window)
        stacked = torch.stack([torch.stack(self._window[k]).float() for k in keys]).cpu()  # one sync
        if self.reduce is not None:
            stacked = self.reduce(stacked)
        finite = torch.isfinite(stacked)
        if not bool(finite.all()):
            row, col = (~finite).nonzero()[0].tolist()
            step = self._window_steps[col] if col < len(self._window_steps) else self._window_steps[-1]
            raise TrainingDiverged(f"{keys[row]} became {stacked[row, col].item()} at step {step} (epoch {epoch})")
        now = time.perf_counter()
        elapsed = max(now - self._t0, 1e-9)
        step = self._window_steps[-1]
        record: dict[str, float] = {"step": step, "epoch": epoch}
        record.update({k: round(float(v), 6) for k, v in zip(keys, stacked.mean(dim=1).tolist())})
        record.update({f"lr/{k}": v for k, v in lrs.items()})
        record["time/images_per_s"] = round(self._window_images / elapsed, 1)
        self.last = record
        self._window.clear()
        self._window_steps.clear()
        self._window_images = 0
        self._t0 = now
        return record

    def reset_clock(self) -> None:
        self._t0 = time.perf_counter()
