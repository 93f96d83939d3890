"""The `genlab neighbours` figure: each row a generated image, then its k nearest training images, each with its
distance written under it (the space and the generated image's number label the row)."""
from __future__ import annotations

from matplotlib.figure import Figure

from genlab.analysis.neighbours import Neighbours
from genlab.reporting.plots import plot_image_grid


def plot_neighbours(nb: Neighbours, title: str = "") -> Figure:
    images, labels, dists = nb.grid()
    per_row = nb.k + 1
    h, w = int(images.shape[-2]), int(images.shape[-1])
    pad = 2
    fig = plot_image_grid(images, per_row, title=title or "nearest training images",
                          row_labels=labels, col_labels=["generated", *[f"#{j + 1}" for j in range(nb.k)]],
                          cell_inches=0.7, padding=pad)
    ax = fig.axes[0]
    for r, row in enumerate(dists):
        for j, d in enumerate(row):
            ax.text(pad + (j + 1) * (w + pad) + w / 2, pad + r * (h + pad) + h - 0.5, f"{d:.3g}", fontsize=5,
                    ha="center", va="bottom", color="black", backgroundcolor="white")
    return fig
