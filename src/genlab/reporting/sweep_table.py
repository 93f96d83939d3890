"""A sweep folder as a table: the runs its manifest (sweep.json) lists, each run's numbers and state, and per
cell the best, mean and std over seeds of every metric; a 1-D or 2-D grid also as a heatmap.

A run's numbers come from its eval.json (top-level numeric keys), else from its last evaluation record in
metrics.jsonl. "Best" is the minimum for lower-is-better metrics (FID, KID) and the maximum for
higher-is-better ones (IS, precision, recall). When no run was evaluated, the table holds the final training
losses (averaged over the last epoch) and says that FID was not evaluated.

Numbers of different evaluation protocols (extractor and its hash, sample counts, reference) are never put in
one cell: when the runs were evaluated under several protocols, a cell's seeds are split per protocol (one row
each, with a ``protocol`` column P1, P2, ...), the table's note says so and lists them, and the heatmap shows
the protocol with the most runs only.

``genlab.sweeps`` writes the manifest and the result files; the HTML report reads the same table.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genlab.config import short_keys
from genlab.errors import GenlabError
from genlab.reporting.metric_names import best_of, higher_is_better, pretty
from genlab.reporting.plots import plot_heatmap
from genlab.reporting.records import Protocols, final_losses, run_evaluation
from genlab.rundir import SWEEP_MANIFEST as MANIFEST
from genlab.rundir import RunDir

#: the order metrics appear in tables; others follow in first-seen order
PREFERRED = ("fid", "fid_inf", "kid", "kid/mean", "is", "is/mean", "precision", "pr/precision", "recall", "pr/recall",
             "coverage/classes_covered", "fd_dinov2", "cmmd", "vendi/score")
#: the rule behind the ≈ mark, said in every table's caption
NOISE_RULE = ("≈: the cell's mean lies inside the best cell's noise band, mean ± 2 std over its seeds (with one "
              "seed: its 95% bootstrap interval, metric ci95), so the difference is within the noise; "
              "[low, high]: the bootstrap interval, averaged over seeds")
RUN_NOISE_RULE = ("[low, high]: the run's 95% bootstrap interval (metric ci95); ≈: the value lies inside the "
                  "best run's interval, a difference within the noise")
NOT_EVALUATED = ("FID was not evaluated in any run: the table shows final training losses instead. "
                 "Evaluate each run when its training ends with eval.at_end=true, or during training with "
                 "eval.every=N (e.g. in the sweep's overrides), or run "
                 "`genlab eval RUN` on each run folder.")


def read_manifest(out: str | Path) -> dict | None:
    p = Path(out) / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise GenlabError(f"{p} is not valid JSON ({e}); delete it and run the sweep again") from None


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


@dataclass
class RunRow:
    cell: str
    values: dict
    seed: int
    path: Path
    state: str  # status.json state, or "missing"
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""
    protocol: dict | None = None  # genlab.evaluation.protocol_id of its evaluation
    intervals: dict = field(default_factory=dict)  # bootstrap intervals (records.INTERVAL_KEYS) of its evaluation


def collect(out: str | Path) -> tuple[list[str], list[RunRow]]:
    """(grid keys, one row per planned run) of the sweep in ``out``."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None:
        raise GenlabError(f"{out} is not a sweep folder (no sweep.json); run `genlab sweep SWEEP.yaml --out {out}`")
    rows = []
    for r in manifest["runs"]:
        path = out / r["path"]
        status = RunDir.of(path).read_status() or {}
        ev = run_evaluation(path)
        rows.append(RunRow(cell=r["cell"], values=r["values"], seed=r["seed"], path=path,
                           state=status.get("state", "missing" if not path.exists() else "not started"),
                           metrics=ev.metrics, source=ev.source, protocol=ev.protocol, intervals=ev.intervals))
    return list(manifest.get("keys", [])), rows


@dataclass
class Table:
    keys: list[str]  # grid keys (dotted)
    metrics: list[str]
    #: {"cell", "values", "seeds", "finished", "protocol" (index in protocols),
    #:  metric: {"best", "mean", "std", "n", "ci" ((low, high) or None), "noise" (bool: the ≈ mark), "top" (bool)}}
    cells: list[dict]
    evaluated: bool
    note: str = ""
    protocols: Protocols = field(default_factory=Protocols)
    main_protocol: int = 0  # the protocol with the most evaluated runs: the heatmap's

    @property
    def primary(self) -> str | None:
        return self.metrics[0] if self.metrics else None

    @property
    def mixed(self) -> bool:
        """The runs were evaluated under several protocols (cells are split per protocol)."""
        return self.protocols.mixed

    def protocol_of(self, row: RunRow) -> int:
        """The index of ``row``'s protocol (a run not evaluated belongs to the main protocol's rows)."""
        if self.evaluated and row.metrics and row.protocol in self.protocols.ids:
            return self.protocols.ids.index(row.protocol)
        return self.main_protocol


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
    protocols = Protocols(r.protocol for r in rows if r.metrics) if evaluated else Protocols()
    counts = [sum(1 for r in rows if r.metrics and r.protocol == pid) for pid in protocols.ids]
    cells: dict[tuple, dict] = {}
    for r in rows:
        # a run not evaluated (yet) joins its cell's row of the main protocol
        pi = protocols.index(r.protocol) if evaluated and r.metrics else (counts.index(max(counts)) if counts else 0)
        c = cells.setdefault((r.cell, pi), {"cell": r.cell, "values": r.values, "seeds": 0, "finished": 0,
                                            "protocol": pi, "_v": {}})
        c["seeds"] += 1
        c["finished"] += r.state == "finished"
        for m in metrics:
            if m in per_run[id(r)]:
                c["_v"].setdefault(m, []).append(per_run[id(r)][m])
                if m in r.intervals:
                    c.setdefault("_ci", {}).setdefault(m, []).append(r.intervals[m])
    for c in cells.values():
        vals, cis = c.pop("_v"), c.pop("_ci", {})
        for m in metrics:
            v = vals.get(m, [])
            ci = tuple(float(x) for x in np.mean(cis[m], axis=0)) if cis.get(m) else None
            c[m] = {"best": best_of(m, v) if v else math.nan, "mean": float(np.mean(v)) if v else math.nan,
                    "std": float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, "n": len(v), "ci": ci,
                    "noise": False, "top": False}
    mark_noise(list(cells.values()), metrics)
    note = protocols.warning() if evaluated else NOT_EVALUATED
    if not rows:
        note = "the sweep has no runs"
    elif not metrics:
        note = "no run has recorded training losses or evaluation metrics yet"
    ordered = sorted(cells.values(), key=lambda c: c["protocol"]) if protocols.mixed else list(cells.values())
    return Table(keys=keys, metrics=metrics, cells=ordered, evaluated=evaluated, note=note, protocols=protocols,
                 main_protocol=counts.index(max(counts)) if counts else 0)


def noise_band(s: dict) -> tuple[float, float] | None:
    """A cell's noise band for one metric: mean ± 2 std over seeds, else (one seed) its bootstrap interval."""
    if s["n"] > 1 and math.isfinite(s["std"]):
        return s["mean"] - 2 * s["std"], s["mean"] + 2 * s["std"]
    return s["ci"]


def mark_noise(cells: list[dict], metrics: list[str]) -> None:
    """Per protocol and metric: ``top`` on the cell with the best mean, ``noise`` (≈) on every other cell whose
    mean lies inside the top cell's ``noise_band`` (``NOISE_RULE``)."""
    for pi in {c["protocol"] for c in cells}:
        group = [c for c in cells if c["protocol"] == pi]
        for m in metrics:
            have = [c for c in group if c[m]["n"]]
            if len(have) < 2:
                continue
            means = [c[m]["mean"] for c in have]
            top = have[means.index(best_of(m, means))]
            top[m]["top"] = True
            band = noise_band(top[m])
            if band is None:
                continue
            for c in have:
                if c is not top and band[0] <= c[m]["mean"] <= band[1]:
                    c[m]["noise"] = True


def run_cell(metric: str, i: int, values: list[dict], intervals: list[dict], groups: list[int]) -> str:
    """A comparison-of-runs cell: run i's value, its bootstrap interval when recorded, and ≈ when the value
    lies inside the interval of the best run of its protocol group (``groups[i]``) for that metric."""
    if metric not in values[i]:
        return "not evaluated"
    v = values[i][metric]
    out = fmt(v) + (f" [{fmt(intervals[i][metric][0])}, {fmt(intervals[i][metric][1])}]"
                    if metric in intervals[i] else "")
    peers = [j for j in range(len(values)) if groups[j] == groups[i] and metric in values[j]]
    best = max(peers, key=lambda j: values[j][metric] if higher_is_better(metric) else -values[j][metric])
    band = intervals[best].get(metric)
    if best != i and band is not None and band[0] <= v <= band[1]:
        out += " ≈"
    return out


def fmt(x: float, digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits, empty for NaN/inf."""
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def short(key: str, keys: list[str] | tuple[str, ...] = ()) -> str:
    """``key``'s table name: the shortest trailing part that tells it apart from the other ``keys``."""
    return short_keys([key, *(k for k in keys if k != key)])[key]


def mean_std(c: dict, m: str) -> str:
    s = c[m]
    if not s["n"]:
        return "not evaluated"
    out = fmt(s["mean"]) + (f" ± {fmt(s['std'], 2)}" if math.isfinite(s["std"]) else "")
    if s.get("ci"):
        out += f" [{fmt(s['ci'][0])}, {fmt(s['ci'][1])}]"
    return out + (" ≈" if s.get("noise") else "")


@dataclass
class Pivot:
    rows: list
    cols: list
    best: np.ndarray
    labels: list[list[str]]


def pivot(t: Table, metric: str) -> Pivot:
    """A 1-D or 2-D grid as a matrix of the metric's best value (1-D: one row), for the cells of the table's
    main protocol only (numbers of different protocols are not comparable)."""
    if not 1 <= len(t.keys) <= 2:
        raise GenlabError(f"a heatmap needs a 1-D or 2-D grid, this sweep has {len(t.keys)} keys")
    rk, ck = (t.keys[0], t.keys[1]) if len(t.keys) == 2 else (None, t.keys[0])
    cells = [c for c in t.cells if c.get("protocol", 0) == t.main_protocol]

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
    for c in cells:
        i = rows.index(c["values"].get(rk)) if rk else 0
        j = cols.index(c["values"].get(ck))
        s = c[metric]
        best[i, j] = s["best"]
        if s["n"]:
            labels[i][j] = f"{fmt(s['best'])}\n{mean_std(c, metric)}"
    return Pivot(rows=rows, cols=cols, best=best, labels=labels)


def heatmap_figure(t: Table, metric: str | None = None):
    metric = metric or t.primary
    if metric is None:
        raise GenlabError("no metric to draw")
    p = pivot(t, metric)
    rk = short(t.keys[0], t.keys) if len(t.keys) == 2 else ""
    ck = short(t.keys[-1], t.keys)
    kind = "" if t.evaluated else "final training "
    title = (f"{kind}{pretty(metric)}: best over seeds, then mean ± std "
             f"({'higher' if higher_is_better(metric) else 'lower'} is better)")
    if t.mixed:
        title += f"\nprotocol {Protocols.tag(t.main_protocol)} only (of {len(t.protocols)}; see the table)"
    return plot_heatmap(p.best, p.rows, p.cols, rk, ck, metric, p.labels, title=title)


def load_table(out: str | Path) -> Table:
    keys, rows = collect(out)
    return summarize(keys, rows)
