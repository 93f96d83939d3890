"""Sweep results: per cell, the best, mean and std over seeds of every metric -> CSV, Markdown and a heatmap.

A run's numbers come from its eval.json (top-level numeric keys), else from its last evaluation record in
metrics.jsonl. "Best" is the minimum for lower-is-better metrics (FID, KID) and the maximum for
higher-is-better ones (IS, precision, recall). When no run was evaluated, the table holds the final training
losses (averaged over the last epoch) and says that FID was not evaluated.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write_text
from genlab.reporting.plots import (
    best_of,
    flatten,
    higher_is_better,
    is_score,
    numeric_keys,
    plot_heatmap,
    pretty,
    read_records,
    save_figure,
)
from genlab.sweeps.grid import read_manifest

#: the order metrics appear in tables; others follow in first-seen order
PREFERRED = ("fid", "kid", "kid/mean", "is", "is/mean", "precision", "pr/precision", "recall", "pr/recall",
             "coverage/classes_covered")
NOT_EVALUATED = ("FID was not evaluated in any run: the table shows final training losses instead. "
                 "Evaluate during training with eval.every=N (e.g. in the sweep's overrides), or run "
                 "`genlab eval RUN` on each run folder.")


def run_metrics(run_dir: str | Path) -> tuple[dict[str, float], str]:
    """A run's evaluation numbers and where they came from ("eval.json", "metrics.jsonl"), or ({}, "")."""
    run_dir = Path(run_dir)
    p = run_dir / "eval.json"
    if p.is_file():
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError:
            data = {}
        vals = {k: float(v) for k, v in (flatten(data) if isinstance(data, dict) else {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and is_score(k) and math.isfinite(float(v))}
        if vals:
            return vals, "eval.json"
    evals = read_records(run_dir).eval
    if evals:
        last = evals[-1]
        return {k: float(last[k]) for k in numeric_keys([last]) if is_score(k)}, "metrics.jsonl"
    return {}, ""


def final_losses(run_dir: str | Path) -> dict[str, float]:
    """Training losses averaged over the records of the last epoch (a steadier figure than the last record)."""
    train = read_records(run_dir).train
    if not train:
        return {}
    last_epoch = max(int(r.get("epoch", 0)) for r in train)
    recs = [r for r in train if int(r.get("epoch", 0)) == last_epoch]
    keys = [k for k in numeric_keys(recs) if k.startswith("loss")]
    return {k: float(np.mean([r[k] for r in recs if isinstance(r.get(k), (int, float))])) for k in keys}


@dataclass
class RunRow:
    cell: str
    values: dict
    seed: int
    path: Path
    state: str  # status.json state, or "missing"
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""


def collect(out: str | Path) -> tuple[list[str], list[RunRow]]:
    """(grid keys, one row per planned run) of the sweep in ``out``."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise GenlabError(f"{out} is not a sweep folder (no sweep.json); run `genlab sweep SWEEP.yaml --out {out}`")
    rows = []
    for r in manifest["runs"]:
        path = out / r["path"]
        status = {}
        if (path / "status.json").is_file():
            try:
                status = json.loads((path / "status.json").read_text())
            except json.JSONDecodeError:
                pass
        metrics, source = run_metrics(path)
        rows.append(RunRow(cell=r["cell"], values=r["values"], seed=r["seed"], path=path,
                           state=status.get("state", "missing" if not path.exists() else "not started"),
                           metrics=metrics, source=source))
    return list(manifest.get("keys", [])), rows


@dataclass
class Table:
    keys: list[str]  # grid keys (dotted)
    metrics: list[str]
    cells: list[dict]  # {"cell", "values", "seeds", "finished", metric: {"best", "mean", "std", "n"}}
    evaluated: bool
    note: str = ""

    @property
    def primary(self) -> Optional[str]:
        return self.metrics[0] if self.metrics else None


def _order(metrics: list[str]) -> list[str]:
    first = [m for m in PREFERRED if m in metrics]
    return first + [m for m in metrics if m not in first]


def summarize(keys: list[str], rows: list[RunRow]) -> Table:
    """Per cell and metric: best, mean and (sample) std over the seeds that have the metric."""
    evaluated = any(r.metrics for r in rows)
    per_run = {id(r): (r.metrics if evaluated else final_losses(r.path)) for r in rows}
    found: dict[str, None] = {}
    for r in rows:
        for k in per_run[id(r)]:
            found.setdefault(k, None)
    metrics = _order(list(found))
    cells: dict[str, dict] = {}
    for r in rows:
        c = cells.setdefault(r.cell, {"cell": r.cell, "values": r.values, "seeds": 0, "finished": 0, "_v": {}})
        c["seeds"] += 1
        c["finished"] += r.state == "finished"
        for m in metrics:
            if m in per_run[id(r)]:
                c["_v"].setdefault(m, []).append(per_run[id(r)][m])
    for c in cells.values():
        vals = c.pop("_v")
        for m in metrics:
            v = vals.get(m, [])
            c[m] = {"best": best_of(m, v) if v else math.nan, "mean": float(np.mean(v)) if v else math.nan,
                    "std": float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, "n": len(v)}
    note = "" if evaluated else NOT_EVALUATED
    if not rows:
        note = "the sweep has no runs"
    elif not metrics:
        note = "no run has recorded training losses or evaluation metrics yet"
    return Table(keys=keys, metrics=metrics, cells=list(cells.values()), evaluated=evaluated, note=note)


def _fmt(x: float, digits: int = 4) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def to_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([short(k) for k in t.keys] + ["seeds", "finished"]
               + [f"{m}_{s}" for m in t.metrics for s in ("best", "mean", "std", "n")])
    for c in t.cells:
        w.writerow([c["values"].get(k, "") for k in t.keys] + [c["seeds"], c["finished"]]
                   + [v for m in t.metrics for v in (_fmt(c[m]["best"], 6), _fmt(c[m]["mean"], 6),
                                                      _fmt(c[m]["std"], 6), c[m]["n"])])
    return buf.getvalue()


def mean_std(c: dict, m: str) -> str:
    s = c[m]
    if not s["n"]:
        return "not evaluated"
    return _fmt(s["mean"]) + (f" ± {_fmt(s['std'], 2)}" if math.isfinite(s["std"]) else "")


def to_markdown(t: Table, title: str = "") -> str:
    lines = [f"## {title}", ""] if title else []
    if t.note:
        lines += [f"> {t.note}", ""]
    head = [short(k) for k in t.keys] + ["seeds (finished)"]
    for m in t.metrics:
        arrow = "↑" if higher_is_better(m) else "↓"
        head += [f"{pretty(m)} best {arrow}", f"{pretty(m)} mean ± std"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in t.cells:
        row = [str(c["values"].get(k, "")) for k in t.keys] + [f"{c['seeds']} ({c['finished']})"]
        for m in t.metrics:
            row += [_fmt(c[m]["best"]) or "–", mean_std(c, m)]
        lines.append("| " + " | ".join(row) + " |")
    if len(t.keys) == 2 and t.primary:
        piv = pivot(t, t.primary)
        m = t.primary
        lines += ["", f"{pretty(m)}, best over seeds ({'higher' if higher_is_better(m) else 'lower'} is better): "
                      f"{short(t.keys[0])} (rows) x {short(t.keys[1])} (columns)", ""]
        lines += ["| " + short(t.keys[0]) + " \\ " + short(t.keys[1]) + " | "
                  + " | ".join(map(str, piv.cols)) + " |", "|" + "---|" * (len(piv.cols) + 1)]
        for i, rv in enumerate(piv.rows):
            lines.append(f"| {rv} | " + " | ".join(_fmt(x) or "–" for x in piv.best[i]) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Pivot:
    rows: list
    cols: list
    best: np.ndarray
    labels: list[list[str]]


def pivot(t: Table, metric: str) -> Pivot:
    """A 1-D or 2-D grid as a matrix of the metric's best value (1-D: one row)."""
    if not 1 <= len(t.keys) <= 2:
        raise GenlabError(f"a heatmap needs a 1-D or 2-D grid, this sweep has {len(t.keys)} keys")
    rk, ck = (t.keys[0], t.keys[1]) if len(t.keys) == 2 else (None, t.keys[0])

    def uniq(key):
        seen = []
        for c in t.cells:
            v = c["values"].get(key)
            if v not in seen:
                seen.append(v)
        return seen

    rows = uniq(rk) if rk else [""]
    cols = uniq(ck)
    best = np.full((len(rows), len(cols)), np.nan)
    labels = [["not evaluated"] * len(cols) for _ in rows]
    for c in t.cells:
        i = rows.index(c["values"].get(rk)) if rk else 0
        j = cols.index(c["values"].get(ck))
        s = c[metric]
        best[i, j] = s["best"]
        if s["n"]:
            labels[i][j] = f"{_fmt(s['best'])}\n{mean_std(c, metric)}"
    return Pivot(rows=rows, cols=cols, best=best, labels=labels)


def heatmap_figure(t: Table, metric: Optional[str] = None):
    metric = metric or t.primary
    if metric is None:
        raise GenlabError("no metric to draw")
    p = pivot(t, metric)
    rk = short(t.keys[0]) if len(t.keys) == 2 else ""
    ck = short(t.keys[-1])
    kind = "" if t.evaluated else "final training "
    title = (f"{kind}{pretty(metric)}: best over seeds, then mean ± std "
             f"({'higher' if higher_is_better(metric) else 'lower'} is better)")
    return plot_heatmap(p.best, p.rows, p.cols, rk, ck, metric, p.labels, title=title)


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
    w.writerow(["cell", "seed", "state", "source", "path"] + ms)
    for r in rows:
        w.writerow([r.cell, r.seed, r.state, r.source, str(r.path.relative_to(out))]
                   + [_fmt(r.metrics.get(m, math.nan), 6) for m in ms])
    paths["runs"] = atomic_write_text(out / "runs.csv", buf.getvalue())
    if 1 <= len(t.keys) <= 2 and t.primary:
        png, svg = save_figure(heatmap_figure(t), out / "results_heatmap.png")
        paths["heatmap"], paths["heatmap_svg"] = png, svg
    return paths


def load_table(out: str | Path) -> Table:
    keys, rows = collect(out)
    return summarize(keys, rows)
