"""The quality-diversity figure of ``genlab eval --truncation-sweep``: FID and precision/recall against psi."""
from __future__ import annotations

from matplotlib.figure import Figure

from genlab.errors import GenlabError
from genlab.reporting.plots import new_figure


def plot_truncation(numbers: dict, title: str = "") -> Figure:
    """Two panels from analysis/truncation.json: FID (lower is better) and precision / recall against psi."""
    points = numbers.get("points") if isinstance(numbers, dict) else None
    if not points:
        raise GenlabError("the truncation sweep holds no points")
    psi = [p["psi"] for p in points]
    fig = new_figure(8.0, 3.2)
    ax_fid, ax_pr = fig.subplots(1, 2)
    ax_fid.plot(psi, [p["fid"] for p in points], "o-", color="tab:red")
    ax_fid.set_xlabel("truncation psi")
    ax_fid.set_ylabel(f"FID ({numbers.get('extractor', '?')} features)")
    ax_fid.set_title("FID (lower is better)")
    for key, color in (("precision", "tab:blue"), ("recall", "tab:orange")):
        ax_pr.plot(psi, [p[key] for p in points], "o-", color=color, label=key)
    ax_pr.set_xlabel("truncation psi")
    ax_pr.set_ylim(-0.02, 1.02)
    ax_pr.set_title(f"precision / recall (k={numbers.get('pr_k', '?')})")
    ax_pr.legend()
    for ax in (ax_fid, ax_pr):
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"truncation ({numbers.get('mode', 'resample')}), {numbers.get('num_samples', '?')} "
                          "samples per psi")
    return fig
