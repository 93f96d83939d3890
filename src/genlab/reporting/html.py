"""One self-contained HTML report for a run, a comparison of runs, or a sweep.

Everything is inside the file: images as base64 data URIs, CSS inline, no script and no external request,
so it can be mailed, archived or opened on a phone. Each section is built on its own; a section that cannot
be drawn for this run (no encoder, no classifier, never evaluated) says why instead of failing the report.

The page model is ``page.py``, the run sections ``run_sections.py``; this module adds the comparison of runs
and the sweep block and writes the file.

    build_report(["runs/demo"], "runs/demo/report.html")
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from genlab.analysis.epoch_grids import sample_epochs
from genlab.config import short_keys
from genlab.errors import GenlabError
from genlab.evaluation import describe_protocol
from genlab.io import atomic_write_text
from genlab.reporting.metric_names import best_of, higher_is_better, pretty
from genlab.reporting.page import Block, Image, Section, Table, data_uri, fig_image, fmt, render
from genlab.reporting.plots import plot_metrics
from genlab.reporting.records import Protocols, eval_metrics, final_losses, run_evaluation
from genlab.reporting.run_sections import RUN_SECTIONS, run_block
from genlab.reporting.search_report import search_block
from genlab.reporting.search_table import is_search_dir
from genlab.reporting.sweep_table import (
    NOISE_RULE,
    RUN_NOISE_RULE,
    collect,
    heatmap_figure,
    is_sweep_dir,
    mean_std,
    read_manifest,
    run_cell,
    summarize,
)
from genlab.rundir import check_output_file

#: RUN_SECTIONS (every run section in page order) is re-exported for callers of the report
__all__ = ["RUN_SECTIONS", "build_report", "comparison_block", "run_block", "sweep_block"]


def comparison_block(paths: Sequence[Path], labels: Sequence[str]) -> Block:
    block = Block(id="comparison", title="Comparison", subtitle=f"{len(paths)} runs")
    table = Section(id="comparison-metrics", title="Final metrics")
    evals = [run_evaluation(p) for p in paths]
    per = [(ev.metrics, ev.source) for ev in evals]
    protocols = Protocols(ev.protocol for ev in evals if ev.metrics)
    names: list[str] = []
    for values, _ in per:
        names += [k for k in values if k not in names]
    losses = [final_losses(p) for p in paths]
    loss_names: list[str] = []
    for lo in losses:
        loss_names += [k for k in lo if k not in loss_names]
    rows = []
    all_values, all_ci = [v for v, _ in per], [ev.intervals for ev in evals]
    groups = [protocols.index(ev.protocol) if ev.metrics else -1 for ev in evals]
    order = sorted(range(len(paths)), key=lambda i: protocols.index(evals[i].protocol) if evals[i].metrics else 0)
    for i in order if protocols.mixed else range(len(paths)):
        (values, _source), lo, ev = per[i], losses[i], evals[i]
        tag = [protocols.tag(protocols.index(ev.protocol)) if ev.metrics else ""] if protocols.mixed else []
        rows.append([labels[i]] + tag + [run_cell(k, i, all_values, all_ci, groups) for k in names]
                    + [fmt(lo[k]) if k in lo else "" for k in loss_names])
    noise = " " + RUN_NOISE_RULE if any(ev.intervals for ev in evals) else ""
    table.tables.append(Table(["run"] + (["protocol"] if protocols.mixed else []) + [pretty(k) for k in names]
                              + [f"{pretty(k)} (last epoch)" for k in loss_names], rows,
                              caption=(_protocol_caption(protocols) + noise).strip()))
    if protocols.mixed:
        table.notes.append(protocols.warning())
    if not names:
        table.notes.append("not evaluated: no run has eval.json or evaluation records")
    block.sections.append(table)
    curves = Section(id="comparison-curves", title="Metrics over epochs")
    if any(eval_metrics(p) for p in paths):
        curves.images.append(fig_image(plot_metrics(list(zip(labels, paths))), "one line per run; circles mark "
                                                                               "each run's best value"))
    else:
        curves.notes.append("not evaluated during training in any run (eval.every=0)")
    block.sections.append(curves)
    return block


def _protocol_caption(protocols: Protocols) -> str:
    if protocols.mixed:
        return "; ".join(protocols.legend())
    return f"protocol: {describe_protocol(protocols.ids[0])}" if protocols.ids and protocols.ids[0] else ""


def sweep_block(path: Path, log: Callable[[str], None] = print) -> Block:
    manifest = read_manifest(path) or {}
    keys, rows = collect(path)
    t = summarize(keys, rows)
    block = Block(id="sweep", title=f"Sweep {manifest.get('name', path.name)}",
                  subtitle=f"{path} - {manifest.get('description', '')}".rstrip(" -"))
    setup = Section(id="sweep-setup", title="Sweep")
    setup.pre = json.dumps({k: manifest.get(k) for k in ("base", "overrides", "grid", "seeds")}, indent=1)
    block.sections.append(setup)
    res = Section(id="sweep-results", title="Results per cell")
    if t.note:
        res.notes.append(t.note)
    names = short_keys(list(t.keys))
    header = [names[k] for k in t.keys] + (["protocol"] if t.mixed else []) + ["seeds (finished)"]
    for m in t.metrics:
        header += [f"{pretty(m)} best {'↑' if higher_is_better(m) else '↓'}", f"{pretty(m)} mean ± std"]
    body = []
    caption = (_protocol_caption(t.protocols) + (" " + NOISE_RULE if t.evaluated else "")).strip()
    for c in t.cells:
        r = ([str(c["values"].get(k, "")) for k in t.keys] + ([t.protocols.tag(c["protocol"])] if t.mixed else [])
             + [f"{c['seeds']} ({c['finished']})"])
        for m in t.metrics:
            r += [fmt(c[m]["best"]) if c[m]["n"] else "–", mean_std(c, m)]
        body.append(r)
    res.tables.append(Table(header, body, caption=caption))
    if 1 <= len(t.keys) <= 2 and t.primary:
        try:
            res.images.append(fig_image(heatmap_figure(t), f"{pretty(t.primary)} per cell"))
        except GenlabError as e:
            res.notes.append(f"no heatmap: {e}")
    block.sections.append(res)
    runs = Section(id="sweep-runs", title="Runs")
    ms = sorted({m for r in rows for m in r.metrics})
    runs.tables.append(Table(["cell", "seed", "state"] + [pretty(m) for m in ms],
                             [[r.cell, str(r.seed), r.state] + [fmt(r.metrics[m]) if m in r.metrics else "–"
                                                                for m in ms] for r in rows]))
    block.sections.append(runs)
    gallery = Section(id="sweep-samples", title="Last samples per cell")
    metric = t.primary if t.evaluated else None
    for c in t.cells:
        cell_rows = [r for r in rows if r.cell == c["cell"] and t.protocol_of(r) == c["protocol"]
                     and sample_epochs(r.path)]
        if not cell_rows:
            continue
        if metric and any(metric in r.metrics for r in cell_rows):
            scored = [r for r in cell_rows if metric in r.metrics]
            target = best_of(metric, [r.metrics[metric] for r in scored])
            pick = next(r for r in scored if r.metrics[metric] == target)
            why = f"best {pretty(metric)} seed"
        else:
            pick, why = cell_rows[0], "first seed"
        epoch, png = list(sample_epochs(pick.path).items())[-1]
        tag = f" [{t.protocols.tag(c['protocol'])}]" if t.mixed else ""
        gallery.images.append(Image(data_uri(png.read_bytes()), f"{c['cell']}{tag}: seed {pick.seed} ({why}), epoch "
                                                                 f"{epoch}", c["cell"], pixelated=True))
    if not gallery.images:
        gallery.notes.append("no run has written samples yet")
    block.sections.append(gallery)
    return block


def _labels(paths: Sequence[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def build_report(paths: Sequence[str | Path], out: str | Path, checkpoint: str = "last", device: str = "cpu",
                 seed: int = 0, title: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Runs and/or sweep folders -> one HTML file at ``out``. Two or more runs add a comparison block."""
    if not paths:
        raise GenlabError("give at least one run or sweep folder")
    check_output_file(out, (".html", ".htm"), "-o")
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            raise GenlabError(f"{str(p)!r} is not a folder; give run folders (with config.yaml) or sweep folders "
                              "(with sweep.json)")
    searches = [p for p in paths if is_search_dir(p)]
    sweeps = [p for p in paths if is_sweep_dir(p) and p not in searches]
    runs = [p for p in paths if p not in sweeps and p not in searches]
    blocks: list[Block] = []
    for p in searches:
        log(f"report: search {p}")
        blocks.append(search_block(p, log))
    for p in sweeps:
        log(f"report: sweep {p}")
        blocks.append(sweep_block(p, log))
    labels = _labels(runs)
    if len(runs) > 1:
        blocks.append(comparison_block(runs, labels))
    for i, (p, label) in enumerate(zip(runs, labels)):
        log(f"report: run {p}")
        blocks.append(run_block(p, i, checkpoint, device, seed, log, label))
    title = title or ("genlab report: " + ", ".join([p.name for p in searches + sweeps] + labels))
    text = render(blocks, title)
    return atomic_write_text(out, text)
