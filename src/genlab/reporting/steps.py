"""The figure of ``genlab eval --steps-sweep``: FID against the ODE steps, and against the seconds per 10k images."""
from __future__ import annotations

from matplotlib.figure import Figure

from genlab.errors import GenlabError
from genlab.reporting.plots import new_figure


def plot_steps(numbers: dict, title: str = "") -> Figure:
    """Two panels from analysis/steps.json: FID (lower is better) against the network evaluations per image
    (each point labelled with its steps), and against the sampling time of 10,000 images. The FID axis is
    logarithmic when the points span more than a factor of 10 (a 1-step FID in the hundreds would flatten the
    steps that matter)."""
    points = numbers.get("points") if isinstance(numbers, dict) else None
    if not points:
        raise GenlabError("the steps sweep holds no points")
    fid = [p["fid"] for p in points]
    log_fid = min(fid) > 0 and max(fid) / min(fid) > 10
    fig = new_figure(8.0, 3.2)
    ax_nfe, ax_time = fig.subplots(1, 2)
    for ax, key, label in ((ax_nfe, "nfe", "network evaluations per image (NFE)"),
                           (ax_time, "seconds_per_10k", f"seconds per 10k images ({numbers.get('device', '?')})")):
        xs = [p[key] for p in points]
        ax.plot(xs, fid, "o-", color="tab:red")
        for p, x in zip(points, xs):
            ax.annotate(str(p["steps"]), (x, p["fid"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.set_xscale("log")
        if log_fid:
            ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(f"FID ({numbers.get('extractor', '?')} features)")
        ax.grid(alpha=0.3)
    ax_nfe.set_title("FID against NFE (labels: steps)")
    ax_time.set_title("FID against sampling time")
    guidance = numbers.get("guidance", 1.0)
    fig.suptitle(title or f"{numbers.get('process', '?')} sampler: {numbers.get('solver', '?')}"
                          + (f", guidance {guidance:g}" if guidance not in (None, 1.0) else "")
                          + f", {numbers.get('num_samples', '?')} samples per point")
    return fig
