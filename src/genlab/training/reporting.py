"""One reporting object that fans scalars out to metrics.jsonl, TensorBoard and the console.

Scalars are accumulated as tensors and synchronised once per window (``log.every_steps``), so the training
step never waits on ``.item()``. Keys under ``time/`` are wall-clock figures (they differ between otherwise
identical runs); every other key is a deterministic function of config and seed.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from genlab.errors import TrainingDiverged


class Reporter:
    def __init__(self, metrics_path: Path, tb_dir: Optional[Path], resume_step: int = 0, enabled: bool = True,
                 reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.enabled = enabled
        self.reduce = reduce  # e.g. the mean over DDP ranks of the stacked window (every rank calls flush)
        self.metrics_path = metrics_path
        self._window: dict[str, list[torch.Tensor]] = {}
        self._window_steps: list[int] = []
        self._window_images = 0
        self._t0 = time.perf_counter()
        self.last: dict[str, float] = {}
        self.tb = None
        if not enabled:
            return
        if resume_step >= 0:
            truncate_jsonl(metrics_path, resume_step)
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(tb_dir), purge_step=resume_step + 1 if resume_step > 0 else None)

    def add(self, step: int, stats: dict[str, torch.Tensor], images: int) -> None:
        """Record one training step's scalars (tensors; no sync here)."""
        for k, v in stats.items():
            self._window.setdefault(k, []).append(v.detach())
        self._window_steps.append(step)
        self._window_images += images

    def flush(self, epoch: int, lrs: dict[str, float]) -> dict[str, float]:
        """Average the window, check it is finite, write one record. Returns the record."""
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
        self.write(record)
        self.last = record
        self._window.clear()
        self._window_steps.clear()
        self._window_images = 0
        self._t0 = now
        return record

    def write(self, record: dict) -> None:
        """Append one record (any kind: train, eval, ...) to metrics.jsonl and TensorBoard."""
        if not self.enabled:
            return
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            step = int(record["step"])
            for k, v in record.items():
                if k in ("step", "epoch") or not isinstance(v, (int, float)) or isinstance(v, bool):
                    continue
                if math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def image(self, tag: str, grid_hwc_uint8, step: int) -> None:
        if self.enabled and self.tb is not None:
            self.tb.add_image(tag, grid_hwc_uint8, step, dataformats="HWC")

    def reset_clock(self) -> None:
        self._t0 = time.perf_counter()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None


def truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop records past ``max_step`` (left by a run killed after its last checkpoint)."""
    if not path.is_file():
        return
    keep = []
    with path.open() as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a crash
            if int(rec.get("step", 0)) <= max_step:
                keep.append(line if line.endswith("\n") else line + "\n")
    from genlab.io import atomic_write_text

    atomic_write_text(path, "".join(keep))
