"""Sweep results files: per cell, the best, mean and std over seeds of every metric -> results.csv, results.md,
runs.csv and (1-D/2-D grids) a heatmap. The table itself is ``genlab.reporting.sweep_table``, which the HTML
report reads too. Runs evaluated under different protocols are never summarised together: each row holds one
protocol (a ``protocol`` column P1, P2, ... appears when there are several, with the list in results.md).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from genlab.io import atomic_write_text
from genlab.reporting.metric_names import higher_is_better, pretty
from genlab.reporting.plots import save_figure
from genlab.reporting.sweep_table import (
    NOISE_RULE,
    Table,
    collect,
    fmt,
    heatmap_figure,
    load_table,
    mean_std,
    pivot,
    short,
    summarize,
)

#: load_table is re-exported: `genlab sweep` prints the table it tabulated
__all__ = ["load_table", "to_csv", "to_markdown", "write_results"]


def to_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    proto = ["protocol"] if t.mixed else []
    with_ci = [m for m in t.metrics if any(c[m].get("ci") for c in t.cells)]  # columns only where recorded
    w.writerow([short(k, t.keys) for k in t.keys] + proto + ["seeds", "finished"]
               + [f"{m}_{s}" for m in t.metrics for s in ("best", "mean", "std", "n")]
               + [f"{m}_{s}" for m in with_ci for s in ("ci_low", "ci_high")]
               + ([f"{m}_within_noise" for m in t.metrics] if len(t.cells) > 1 and t.evaluated else []))
    for c in t.cells:
        tag = [t.protocols.legend()[c["protocol"]]] if t.mixed else []
        ci = [fmt(x, 6) for m in with_ci for x in (c[m]["ci"] or (math.nan, math.nan))]
        w.writerow([c["values"].get(k, "") for k in t.keys] + tag + [c["seeds"], c["finished"]]
                   + [v for m in t.metrics for v in (fmt(c[m]["best"], 6), fmt(c[m]["mean"], 6),
                                                      fmt(c[m]["std"], 6), c[m]["n"])]
                   + ci + ([int(c[m]["noise"]) for m in t.metrics] if len(t.cells) > 1 and t.evaluated else []))
    return buf.getvalue()


def to_markdown(t: Table, title: str = "") -> str:
    lines = [f"## {title}", ""] if title else []
    if t.note:
        lines += [f"> {t.note}", ""]
    if t.evaluated and t.cells:
        lines += [f"{NOISE_RULE}.", ""]
    proto = ["protocol"] if t.mixed else []
    head = [short(k, t.keys) for k in t.keys] + proto + ["seeds (finished)"]
    for m in t.metrics:
        arrow = "↑" if higher_is_better(m) else "↓"
        head += [f"{pretty(m)} best {arrow}", f"{pretty(m)} mean ± std"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in t.cells:
        tag = [t.protocols.tag(c["protocol"])] if t.mixed else []
        row = [str(c["values"].get(k, "")) for k in t.keys] + tag + [f"{c['seeds']} ({c['finished']})"]
        for m in t.metrics:
            row += [fmt(c[m]["best"]) or "–", mean_std(c, m)]
        lines.append("| " + " | ".join(row) + " |")
    if len(t.keys) == 2 and t.primary:
        piv = pivot(t, t.primary)
        m = t.primary
        only = f", protocol {t.protocols.tag(t.main_protocol)} only" if t.mixed else ""
        lines += ["", f"{pretty(m)}, best over seeds ({'higher' if higher_is_better(m) else 'lower'} is better"
                      f"{only}): {short(t.keys[0], t.keys)} (rows) x {short(t.keys[1], t.keys)} (columns)", ""]
        lines += ["| " + short(t.keys[0], t.keys) + " \\ " + short(t.keys[1], t.keys) + " | "
                  + " | ".join(map(str, piv.cols)) + " |", "|" + "---|" * (len(piv.cols) + 1)]
        for i, rv in enumerate(piv.rows):
            lines.append(f"| {rv} | " + " | ".join(fmt(x) or "–" for x in piv.best[i]) + " |")
    return "\n".join(lines) + "\n"


def write_results(out: str | Path, title: str = "") -> dict[str, Path]:
    """Tabulate the sweep in ``out``: results.csv, results.md, runs.csv and (1-D/2-D grids) results_heatmap.png/.svg."""
    out = Path(out)
    keys, rows = collect(out)
    t = summarize(keys, rows)
    paths = {"csv": atomic_write_text(out / "results.csv", to_csv(t)),
             "md": atomic_write_text(out / "results.md", to_markdown(t, title or out.name))}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    ms = sorted({m for r in rows for m in r.metrics})
    w.writerow(["cell", "seed", "state", "source", "path"] + (["protocol"] if t.mixed else []) + ms)
    for r in rows:
        tag = [t.protocols.tag(t.protocol_of(r)) if r.metrics else ""] if t.mixed else []
        w.writerow([r.cell, r.seed, r.state, r.source, str(r.path.relative_to(out))] + tag
                   + [fmt(r.metrics.get(m, math.nan), 6) for m in ms])
    paths["runs"] = atomic_write_text(out / "runs.csv", buf.getvalue())
    if 1 <= len(t.keys) <= 2 and t.primary:
        png, svg = save_figure(heatmap_figure(t), out / "results_heatmap.png")
        paths["heatmap"], paths["heatmap_svg"] = png, svg
    return paths
