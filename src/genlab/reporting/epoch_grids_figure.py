"""The training progress figure: the fixed-noise grids the loop saved (samples/epoch_XXXX.png) side by side
with their epoch, e.g. epochs 30, 60, ..., 300 of a 300-epoch run."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from genlab.analysis.epoch_grids import chosen_epochs, sample_epochs
from genlab.reporting.plots import new_figure
from genlab.rundir import RunDir


def progress_figure(run_dir: str | Path | RunDir, max_panels: int = 10, epochs: Sequence[int] | None = None,
                    columns: int = 5, title: str = ""):
    """A matplotlib Figure with the chosen epochs' sample grids, labelled "epoch N"."""
    available = sample_epochs(run_dir)
    chosen = chosen_epochs(run_dir, max_panels, epochs)
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
