"""Figures from run folders (matplotlib, object API with the Agg canvas: no pyplot, no global state).

Every ``plot_*`` function returns a ``Figure``; ``save_figure`` writes it as PNG and SVG, ``figure_bytes``
gives the bytes for the HTML report. Inputs are metrics records (read by ``genlab.reporting.records``) or
arrays, so plots never touch models.
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genlab.errors import GenlabError
from genlab.grids import make_grid
from genlab.io import atomic_write_bytes
from genlab.reporting.metric_names import higher_is_better, pretty
from genlab.reporting.records import Protocols, eval_metrics, metric_series_by_protocol, numeric_keys

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VAE_KEYS = ("loss_total", "loss_recon", "loss_kl")


def fractional_epochs(train: Sequence[dict]) -> tuple[np.ndarray, str]:
    """x values for training curves: fractional epochs when steps per epoch can be read off, else steps."""
    steps = np.array([float(r.get("step", i)) for i, r in enumerate(train)])
    epochs = [int(r.get("epoch", 0)) for r in train]
    if epochs and max(epochs) > 1:
        first = [s for s, e in zip(steps, epochs) if e == 1]
        spe = max(first) if first else 0
        if spe > 0:
            return steps / spe, "epoch"
    return steps, "step"


def ema(values: Sequence[float], smoothing: float = 0.9) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing): weight ``smoothing`` on the past."""
    if not 0 <= smoothing < 1:
        raise GenlabError(f"smoothing must be in [0, 1), got {smoothing}")
    out = np.empty(len(values))
    acc, w = 0.0, 0.0
    for i, v in enumerate(values):
        acc = smoothing * acc + (1 - smoothing) * float(v)
        w = smoothing * w + (1 - smoothing)
        out[i] = acc / w
    return out


# ----------------------------------------------------------------------------------------------- output
def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas. matplotlib is imported here, on the first figure, not with this module: every
    CLI command imports the sweep and report modules (their help texts), and matplotlib costs ~1 s to import."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def compact_png(data: bytes) -> bytes:
    """Re-encode a PNG with a 256-colour palette when that is smaller (figures have few colours; grey images
    have at most 256 levels), so pictures stay small enough to commit and to embed."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    buf = io.BytesIO()
    pal.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure as PNG (palette-compacted) or SVG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None} if fmt == "png" else None)
    return compact_png(buf.getvalue()) if fmt == "png" else buf.getvalue()


def save_figure(fig: Figure, path: str | Path, svg: bool = True, dpi: int = 110) -> list[Path]:
    """Write ``path`` (PNG; the suffix is forced) and, with ``svg``, the same figure as ``.svg`` next to it."""
    png = Path(path).with_suffix(".png")
    atomic_write_bytes(png, figure_bytes(fig, "png", dpi))
    out = [png]
    if svg:
        atomic_write_bytes(png.with_suffix(".svg"), figure_bytes(fig, "svg"))
        out.append(png.with_suffix(".svg"))
    return out


# ------------------------------------------------------------------------------------------ loss curves
def _curve(ax, x, y, label, color, smoothing):
    ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
    ax.plot(x, ema(y, smoothing) if smoothing > 0 else y, color=color, linewidth=1.6, label=label)


def _series(train: Sequence[dict], key: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = [(xi, float(r[key])) for xi, r in zip(x, train) if isinstance(r.get(key), (int, float))]
    return np.array([k[0] for k in keep]), np.array([k[1] for k in keep])


def is_vae_records(train: Sequence[dict]) -> bool:
    keys = set(numeric_keys(train))
    return bool(keys & set(VAE_KEYS)) and not ({"loss_D", "loss_G"} <= keys)


def plot_losses(train: Sequence[dict], title: str = "", smoothing: float = 0.9,
                d_probabilities: bool = True) -> Figure:
    """Training curves, raw (faint) and EMA-smoothed.

    GAN: loss_D and loss_G (and any other loss_*) in the first panel; D(x) and D(G(z)) in the second with the
    0.5 line where neither network wins (the equilibrium of the original GAN game), drawn only when
    ``d_probabilities`` (the run's loss records sigmoid outputs: bce; hinge, Wasserstein and relativistic record
    raw scores). VAE: reconstruction and total loss in the first panel, KL in the second (its scale differs).
    """
    if not train:
        raise GenlabError("no training records in metrics.jsonl; train the run first")
    x, xlabel = fractional_epochs(train)
    keys = numeric_keys(train)
    colors = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                   "tab:gray", "tab:olive", "tab:cyan"] * 3)
    if is_vae_records(train):
        first = [k for k in ("loss_total", "loss_recon") if k in keys] + \
                [k for k in keys if k.startswith("loss") and k not in VAE_KEYS]
        second = [k for k in ("loss_kl",) if k in keys]
        second_title, second_label = "KL divergence", "KL"
    else:
        first = [k for k in keys if k.startswith("loss")]
        second = [k for k in keys if k.startswith("D(")]
        second_title, second_label = "discriminator outputs", "mean D output"
    third = [k for k in keys if k.startswith("acc")]  # auxiliary-classifier accuracies (ACGAN)
    panels = [p for p in (first, second, third) if p]
    if not panels:
        panels = [keys[:6]]
    fig = new_figure(6.4 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, group in zip(axes, panels):
        for k in group:
            xs, ys = _series(train, k, x)
            if len(ys):
                _curve(ax, xs, ys, pretty(k), next(colors), smoothing)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("losses" + (f" (EMA {smoothing})" if smoothing else ""))
    axes[0].set_ylabel("loss")
    if third and len(panels) > 1:
        axes[len(panels) - 1].set_title("auxiliary classifier")
        axes[len(panels) - 1].set_ylabel("accuracy")
    if second and len(panels) > 1:
        ax = axes[1]
        ax.set_title(second_title)
        ax.set_ylabel(second_label)
        values = np.concatenate([_series(train, k, x)[1] for k in second] or [np.zeros(0)])
        if d_probabilities and any(k.startswith("D(") for k in second) and len(values) \
                and values.min() >= 0 and values.max() <= 1:
            ax.axhline(0.5, color="black", linestyle="--", linewidth=1, label="0.5 (equilibrium)")
            ax.set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ------------------------------------------------------------------------------------ metrics over epochs
def metric_protocols(runs: Sequence[tuple[str, str | Path]], metrics: Sequence[str]) -> Protocols:
    """The evaluation protocols behind ``metrics`` in ``runs``' records, numbered in first-seen order."""
    return Protocols(pid for _, rd in runs for m in metrics for pid, _, _ in metric_series_by_protocol(rd, m))


def plot_metrics(runs: Sequence[tuple[str, str | Path]], metrics: Sequence[str] | None = None,
                 warn: Callable[[str], None] | None = None) -> Figure:
    """Evaluation metrics over epochs, one panel per metric, one line per run (e.g. DCGAN vs WGAN-GP vs ACGAN).

    ``metrics`` defaults to every metric any run evaluated. The best value of each line is marked. Records of
    different evaluation protocols (extractor, sample counts, reference) are never one line: when there are
    several, each (run, protocol) is its own line labelled ``[P1]``, ``[P2]`` (dashed for all but the first
    protocol), the protocols are listed under the figure and ``warn`` (e.g. print) gets the warning line.
    """
    if not runs:
        raise GenlabError("no runs to plot")
    if metrics is None:
        found: dict[str, None] = {}
        for _, rd in runs:
            for m in eval_metrics(rd):
                found.setdefault(m, None)
        metrics = list(found)
    if not metrics:
        raise GenlabError("no evaluation records in any run (metrics were not evaluated); train with "
                          "eval.every=N to record FID during training")
    protocols = metric_protocols(runs, metrics)
    rows = math.ceil(len(metrics) / 3)
    fig = new_figure(min(5.2 * len(metrics), 15.6), 3.6 * rows + (0.3 + 0.2 * len(protocols) if protocols.mixed else 0))
    axes = fig.subplots(rows, min(len(metrics), 3), squeeze=False).reshape(-1)
    plotted = 0
    for ax, metric in zip(axes, metrics):
        for label, rd in runs:
            for pid, xs, ys in metric_series_by_protocol(rd, metric):
                k = protocols.index(pid)
                tag = f" [{protocols.tag(k)}]" if protocols.mixed else ""
                line = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.5, label=label + tag,
                               linestyle="-" if k == 0 else "--")[0]
                i = int(np.argmax(ys) if higher_is_better(metric) else np.argmin(ys))
                ax.scatter([xs[i]], [ys[i]], s=60, facecolors="none", edgecolors=line.get_color(), zorder=3)
                plotted += 1
        direction = "higher" if higher_is_better(metric) else "lower"
        ax.set_title(f"{pretty(metric)} ({direction} is better)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(pretty(metric))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes, color="gray")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    if not plotted:
        raise GenlabError(f"none of the runs has evaluation records for {', '.join(metrics)}")
    if protocols.mixed:
        fig.supxlabel("not comparable across protocols:\n" + "\n".join(protocols.legend()), fontsize=7,
                      color="firebrick")  # placed by the figure's layout engine, under the panels
        if warn is not None:
            warn(protocols.warning())
    return fig


# -------------------------------------------------------------------------------------------- image grids
def plot_image_grid(images, nrow: int, title: str = "", row_labels: Sequence[str] = (),
                    col_labels: Sequence[str] = (), xlabel: str = "", ylabel: str = "",
                    cell_inches: float = 0.55, padding: int = 2) -> Figure:
    """A grid of images with optional labels on rows and columns (class names, latent values, dimensions)."""
    arr = make_grid(images, nrow=nrow, padding=padding)
    n, _, h, w = images.shape
    rows = math.ceil(n / nrow)
    fig = new_figure(max(3.0, nrow * cell_inches + (1.2 if row_labels else 0.4)),
                     max(2.2, rows * cell_inches + (0.9 if title else 0.4) + (0.5 if col_labels else 0)))
    ax = fig.add_subplot()
    ax.imshow(arr, interpolation="nearest")
    ax.set_xticks([padding + c * (w + padding) + w / 2 for c in range(len(col_labels))] if col_labels else [])
    ax.set_xticklabels(list(col_labels), fontsize=7, rotation=0)
    ax.set_yticks([padding + r * (h + padding) + h / 2 for r in range(len(row_labels))] if row_labels else [])
    ax.set_yticklabels(list(row_labels), fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------ scatter/bars
def plot_latent_scatter(points: np.ndarray, labels: np.ndarray | None, class_names: Sequence[str] = (),
                        title: str = "", axis_names: tuple[str, str] = ("z[0]", "z[1]")) -> Figure:
    """Encoded images in 2-D, coloured by class (the VAE class scatter)."""
    fig = new_figure(6.2, 5.0)
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        classes = sorted(set(int(c) for c in labels))
        from matplotlib import colormaps

        palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for i, k in enumerate(classes):
            sel = labels == k
            name = class_names[k] if k < len(class_names) else str(k)
            ax.scatter(points[sel, 0], points[sel, 1], s=5, alpha=0.7, color=palette(i % palette.N), label=name)
        ax.legend(fontsize=7, markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_class_coverage(coverage, title: str = "") -> Figure:
    """Generated vs real class shares as paired bars; classes the generator misses are marked."""
    k = coverage.num_classes
    fig = new_figure(max(5.0, 0.6 * k + 1.5), 3.6)
    ax = fig.add_subplot()
    x = np.arange(k)
    ax.bar(x - 0.2, coverage.real_share, width=0.4, label=f"real (n={int(coverage.real.sum())})", color="tab:gray")
    ax.bar(x + 0.2, coverage.generated_share, width=0.4, label=f"generated (n={int(coverage.generated.sum())})",
           color="tab:blue")
    for m in coverage.missing:
        ax.annotate("missing", (m + 0.2, coverage.generated_share[m]), ha="center", va="bottom", fontsize=7,
                    color="tab:red", rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(coverage.class_names, rotation=45 if k > 5 else 0, ha="right" if k > 5 else "center",
                       fontsize=8)
    ax.set_ylabel("share of images")
    ax.legend(fontsize=8)
    s = coverage.summary()
    ax.set_title(title or f"class coverage: {s['classes_covered']}/{s['classes_present']} classes, "
                          f"total variation {s['total_variation']:.3f}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_heatmap(matrix: np.ndarray, row_values: Sequence, col_values: Sequence, row_name: str, col_name: str,
                 metric: str, annotations: Sequence[Sequence[str]] | None = None, title: str = "") -> Figure:
    """A 2-D sweep as a heatmap (rows x columns), each cell annotated; NaN cells read "n/a"."""
    m = np.asarray(matrix, dtype=float)
    fig = new_figure(max(4.0, 1.3 * len(col_values) + 2.2), max(3.0, 0.9 * len(row_values) + 1.6))
    ax = fig.add_subplot()
    cmap = "viridis" if higher_is_better(metric) else "viridis_r"
    masked = np.ma.masked_invalid(m)
    im = ax.imshow(masked, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(col_values)))
    ax.set_xticklabels([str(v) for v in col_values])
    ax.set_yticks(range(len(row_values)))
    ax.set_yticklabels([str(v) for v in row_values])
    ax.set_xlabel(col_name)
    ax.set_ylabel(row_name)
    finite = m[np.isfinite(m)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for r in range(m.shape[0]):
        for c in range(m.shape[1]):
            text = annotations[r][c] if annotations is not None else ("n/a" if not np.isfinite(m[r, c])
                                                                       else f"{m[r, c]:.4g}")
            if not np.isfinite(m[r, c]):
                color = "gray"
            else:  # black text on the bright end of the colour map, white on the dark end
                color = "black" if (m[r, c] < mid) != higher_is_better(metric) else "white"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(im, ax=ax, label=pretty(metric))
    ax.set_title(title or f"{pretty(metric)} ({'higher' if higher_is_better(metric) else 'lower'} is better)",
                 fontsize=10)
    return fig
