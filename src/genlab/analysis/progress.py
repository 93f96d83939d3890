"""The training progress figure: the fixed-noise grids the loop saved (samples/epoch_XXXX.png) side by side
with their epoch, e.g. epochs 30, 60, ..., 300 of a 300-epoch run."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from genlab.errors import GenlabError

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.png$")


def sample_epochs(run_dir: str | Path) -> dict[int, Path]:
    """epoch -> its fixed-noise grid, for every samples/epoch_XXXX.png of a run, sorted by epoch."""
    folder = Path(run_dir) / "samples"
    found = {}
    if folder.is_dir():
        for p in folder.iterdir():
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


def progress_figure(run_dir: str | Path, max_panels: int = 10, epochs: Optional[Sequence[int]] = None,
                    columns: int = 5, title: str = ""):
    """A matplotlib Figure with the chosen epochs' sample grids, labelled "epoch N"."""
    from genlab.reporting.plots import new_figure

    available = sample_epochs(run_dir)
    if not available:
        raise GenlabError(f"{run_dir} has no samples/epoch_*.png yet (written every log.sample_every epochs)")
    if epochs:
        missing = [e for e in epochs if e not in available]
        if missing:
            raise GenlabError(f"no sample grid for epochs {missing}; available: {', '.join(map(str, available))}")
        chosen = list(epochs)
    else:
        chosen = select_epochs(list(available), max_panels)
    cols = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / cols)
    fig = new_figure(2.3 * cols, 2.45 * rows + (0.35 if title else 0))
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, e in zip(axes, chosen):
        with Image.open(available[e]) as im:
            ax.imshow(np.asarray(im.convert("RGB")), interpolation="nearest")
        ax.set_title(f"epoch {e}", fontsize=9)
        ax.axis("off")
    for ax in axes[len(chosen):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
