"""Training progress: which fixed-noise grids the loop saved (samples/epoch_XXXX.png) and which of them to show,
e.g. epochs 30, 60, ..., 300 of a 300-epoch run (``genlab.reporting.epoch_grids_figure`` draws them side by side)."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from genlab.errors import GenlabError
from genlab.rundir import RunDir

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.png$")


def sample_epochs(run_dir: str | Path | RunDir) -> dict[int, Path]:
    """epoch -> its fixed-noise grid, for every samples/epoch_XXXX.png of a run, sorted by epoch."""
    found = {}
    for p in RunDir.of(run_dir).sample_grids():
        m = _EPOCH_FILE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def select_epochs(epochs: Sequence[int], max_panels: int = 10) -> list[int]:
    """At most ``max_panels`` epochs at a fixed stride counted back from the last one (always included):
    300 saved epochs and 10 panels give 30, 60, ..., 300."""
    epochs = sorted(epochs)
    if max_panels < 1:
        raise GenlabError(f"max_panels must be positive, got {max_panels}")
    stride = math.ceil(len(epochs) / max_panels)
    return [epochs[i] for i in range(len(epochs) - 1, -1, -stride)][::-1]


def chosen_epochs(run_dir: str | Path | RunDir, max_panels: int = 10,
                  epochs: Sequence[int] | None = None) -> list[int]:
    """The epochs a progress figure shows: ``epochs`` when given (each must have a grid), else
    :func:`select_epochs` of the saved ones."""
    available = sample_epochs(run_dir)
    if not available:
        raise GenlabError(f"{RunDir.of(run_dir).path} has no samples/epoch_*.png yet (written every "
                          "log.sample_every epochs)")
    if epochs:
        missing = [e for e in epochs if e not in available]
        if missing:
            raise GenlabError(f"no sample grid for epochs {missing}; available: {', '.join(map(str, available))}")
        return list(epochs)
    return select_epochs(list(available), max_panels)
