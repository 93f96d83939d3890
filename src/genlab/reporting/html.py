"""One self-contained HTML report for a run, a comparison of runs, or a sweep.

Everything is inside the file: images as base64 data URIs, CSS inline, no script and no external request,
so it can be mailed, archived or opened on a phone. Each section is built on its own; a section that cannot
be drawn for this run (no encoder, no classifier, never evaluated) says why instead of failing the report.

Analysis sections (progress, class grid, interpolation, latent maps, coverage) show what the analysis
commands left in RUN/analysis/ when it came from the report's checkpoint, and compute only what is missing
(the section then says so), so a report never trains the coverage classifier itself.

    build_report(["runs/demo"], "runs/demo/report.html")
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import jinja2
from omegaconf import OmegaConf

from genlab import __version__
from genlab.analysis import artifacts
from genlab.analysis import coverage as coverage_analysis  # called through the module: tests replace its functions
from genlab.analysis.conditional import class_grid
from genlab.analysis.interpolation import interpolation_rows
from genlab.analysis.progress import sample_epochs
from genlab.analysis.traversal import encode_split, latent_plane, pca_2d, traversal
from genlab.errors import GenlabError, RunError
from genlab.io import atomic_write_text
from genlab.reporting.grids import gif_bytes, make_grid, png_bytes
from genlab.reporting.metric_names import best_of, higher_is_better, pretty
from genlab.reporting.plots import (
    figure_bytes,
    plot_class_coverage,
    plot_image_grid,
    plot_latent_scatter,
    plot_losses,
    plot_metrics,
)
from genlab.reporting.progress import progress_figure
from genlab.reporting.records import eval_metrics, final_losses, read_records, run_metrics
from genlab.reporting.sweep_table import collect, heatmap_figure, is_sweep_dir, mean_std, read_manifest, summarize
from genlab.rundir import RunDir
from genlab.sampling import load_run

TEMPLATE = "report.html.j2"
#: every run section in page order: id -> title
RUN_SECTIONS = {
    "summary": "Summary",
    "config": "Config",
    "metrics": "Metrics",
    "losses": "Loss curves",
    "metric-curves": "Metrics over epochs",
    "progress": "Training progress",
    "samples": "Samples",
    "interpolation": "Latent interpolation",
    "latent": "Latent maps",
    "coverage": "Class coverage",
}


# ------------------------------------------------------------------------------------------------ model
@dataclass
class Image:
    src: str  # data URI
    caption: str = ""
    alt: str = ""
    pixelated: bool = False  # small sample grids: keep pixels sharp when scaled


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pre: str = ""  # preformatted text (config)


@dataclass
class Block:
    """One run, the comparison, or the sweep: an anchor, a heading and its sections."""

    id: str
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def fig_image(fig, caption: str = "", alt: str = "") -> Image:
    return Image(data_uri(figure_bytes(fig, "png", dpi=100)), caption, alt or caption)


def grid_image(images, nrow: int, caption: str = "", target_px: int = 480) -> Image:
    """A sample grid, upscaled by a whole factor (nearest) to about ``target_px`` wide when it is smaller."""
    grid = make_grid(images, nrow=nrow)
    scale = min(3, max(1, target_px // grid.shape[1]))
    return Image(data_uri(png_bytes(grid, scale=scale)), caption, caption, pixelated=True)


def file_image(path: Path, caption: str = "", pixelated: bool = False) -> Image:
    """A PNG or GIF an analysis command wrote, embedded as it is."""
    mime = "image/gif" if path.suffix.lower() == ".gif" else "image/png"
    return Image(data_uri(path.read_bytes(), mime), caption, caption, pixelated=pixelated)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


# ------------------------------------------------------------------------------------------ run sections
@dataclass
class RunContext:
    """What the run sections share: the folder, records, and the loaded networks (loaded once, lazily)."""

    path: Path
    checkpoint: str = "last"
    device: str = "cpu"
    seed: int = 0
    _run: object = None
    _load_error: str = ""

    @property
    def rundir(self) -> RunDir:
        return RunDir.of(self.path)

    @property
    def run(self):
        if self._run is None and not self._load_error:
            try:
                self._run = load_run(self.path, self.checkpoint, self.device)
            except GenlabError as e:
                self._load_error = str(e)
        if self._run is None:
            raise GenlabError(f"the model could not be loaded: {self._load_error}")
        return self._run

    @property
    def checkpoint_file(self) -> Optional[Path]:
        """The checkpoint the report samples from (found without loading it), None when there is none."""
        try:
            return self.rundir.checkpoint_path(self.checkpoint)
        except RunError:
            return None

    def saved(self, name: str) -> tuple[Optional[artifacts.Saved], str]:
        """An analysis command's numbers in RUN/analysis/ made from the report's checkpoint, or (None, why)."""
        return artifacts.saved(self.rundir, name, self.checkpoint_file)

    def artifact_file(self, name: str) -> Optional[Path]:
        p = self.rundir.artifact(name)
        return p if p.is_file() else None


def computed_now(s: Section, why: str, command: str) -> None:
    """Say in the page that a part was drawn for this report, and how to keep it in the run folder."""
    s.notes.append(f"computed now for this report ({why}); `{command}` saves it under analysis/")


def _config_section(ctx: RunContext, s: Section) -> None:
    s.pre = ctx.rundir.read_config_text()
    if not s.pre:
        s.notes.append("no config.yaml in this folder")


def _metrics_section(ctx: RunContext, s: Section) -> None:
    data = ctx.rundir.read_eval()
    values, source = run_metrics(ctx.path)
    if not values:
        s.notes.append("not evaluated: this run has no eval.json and no evaluation records. Evaluate it with "
                       "`genlab eval RUN`, or train with eval.every=N.")
        return
    rows = [[pretty(k), _fmt(v), "higher" if higher_is_better(k) else "lower"] for k, v in values.items()]
    s.tables.append(Table(["metric", "value", "better"], rows, caption=f"from {source}"))
    if isinstance(data, dict) and "protocol" in data:
        s.pre = json.dumps(data["protocol"], indent=1, sort_keys=True)


def _summary_section(ctx: RunContext, s: Section) -> None:
    rd = ctx.rundir
    status = rd.read_status()
    rows = []
    if rd.read_config_text():
        c = OmegaConf.create(rd.read_config())
        rows += [["model", f"{c.model.name} (latent {c.model.latent_dim}, hidden {c.model.hidden_dim})"],
                 ["data", f"{c.data.name}, {c.data.resolution}px, {c.data.channels} channel(s)"
                          + (f", first {c.data.limit} images" if c.data.get("limit") else "")],
                 ["training", f"{c.train.epochs} epochs, batch {c.train.batch_size}, loss {c.train.loss}, "
                              f"seed {c.train.seed}"]]
        if c.get("description"):
            rows.insert(0, ["recipe", str(c.description)])
    if status:
        rows.append(["status", f"{status.get('state', '?')} at epoch {status.get('epoch', '?')}/"
                               f"{status.get('epochs', '?')}, step {status.get('step', '?')}"])
    train = read_records(rd).train
    if train:
        last = train[-1]
        losses = ", ".join(f"{k} {_fmt(v)}" for k, v in last.items()
                           if k.startswith(("loss", "D(")) and isinstance(v, (int, float)))
        rows.append(["last record", f"step {last.get('step')}: {losses}"])
    ckpts = rd.checkpoint_files()
    rows.append(["checkpoints", ", ".join(p.name for p in ckpts[-3:]) or "none"])
    s.tables.append(Table(["", ""], rows))


def _losses_section(ctx: RunContext, s: Section) -> None:
    train = read_records(ctx.rundir).train
    if not train:
        s.notes.append("no training records yet (metrics.jsonl is empty)")
        return
    s.images.append(fig_image(plot_losses(train), "faint: raw records; solid: EMA-smoothed. D(x) and D(G(z)) "
                                                  "meet at 0.5 when neither network wins."))


def _metric_curves_section(ctx: RunContext, s: Section) -> None:
    if not eval_metrics(ctx.rundir):
        s.notes.append("not evaluated during training (no eval records in metrics.jsonl); train with "
                       "eval.every=N to follow FID over epochs")
        return
    s.images.append(fig_image(plot_metrics([(ctx.path.name, ctx.path)]), "evaluation records over epochs"))


def _progress_section(ctx: RunContext, s: Section) -> None:
    epochs = sample_epochs(ctx.rundir)
    if not epochs:
        s.notes.append("no samples/epoch_*.png yet")
        return
    caption = "the fixed-noise grid saved at each epoch (same latents every time)"
    got, why = artifacts.saved(ctx.rundir, artifacts.PROGRESS)  # made from sample grids, not a checkpoint
    png = ctx.artifact_file("progress.png")
    if got and png and got.numbers.get("last_saved_epoch") != max(epochs):
        got, why = None, f"{got.about} stops at epoch {got.numbers.get('last_saved_epoch')}"
    if got and png:
        s.images.append(file_image(png, f"{caption}; from {got.about}"))
        return
    s.images.append(fig_image(progress_figure(ctx.rundir, max_panels=10), caption))
    computed_now(s, why or "no analysis/progress.png", f"genlab plot progress {ctx.path}")


def _samples_section(ctx: RunContext, s: Section) -> None:
    run = ctx.run
    conditioning = getattr(run.spec, "conditioning", "none")
    n = 64
    if conditioning == "text":
        s.images.append(grid_image(run.sampler(ctx.seed)(n), 8, f"{n} samples from {run.checkpoint.name} for random "
                                                                "captions (`genlab sample RUN --prompt ...` for one)"))
        return
    s.images.append(grid_image(run.sample(n, seed=ctx.seed), 8,
                               f"{n} samples from {run.checkpoint.name} (step {run.step}, seed {ctx.seed})"))
    if conditioning == "class":
        caption = "class-conditional grid"
        got, why = ctx.saved(artifacts.CLASS_GRID)
        png = ctx.artifact_file("class_grid.png")
        if got and png:
            s.images.append(file_image(png, f"{caption}; from {got.about}"))
            return
        g = class_grid(run, per_class=8, seed=ctx.seed)
        s.images.append(fig_image(plot_image_grid(g.images, g.per_class, row_labels=g.class_names,
                                                  title="one row per class, same latents in each column"),
                                  caption))
        computed_now(s, why or "no analysis/class_grid.png", f"genlab class-grid {ctx.path}")


def _interpolation_section(ctx: RunContext, s: Section) -> None:
    got, why = ctx.saved(artifacts.INTERPOLATION)
    png = ctx.artifact_file("interpolation.png")
    if got and png:
        about = got.numbers.get("about") or "interpolation"
        s.images.append(file_image(png, f"{about}; from {got.about}", pixelated=True))
        gif = ctx.artifact_file(str(got.numbers.get("gif") or "interpolation.gif"))
        if gif:
            s.images.append(file_image(gif, "the same paths, animated", pixelated=True))
        return
    run = ctx.run
    if getattr(run.spec, "conditioning", "none") == "text":
        s.notes.append("interpolation of text-conditional models is not drawn in reports")
        return
    rows, steps = 4, 10
    images = interpolation_rows(run, rows=rows, steps=steps, method="slerp", seed=ctx.seed)
    s.images.append(grid_image(images, steps, f"spherical interpolation between {rows} pairs of random latents"))
    s.images.append(Image(data_uri(gif_bytes(images, rows=rows, scale=2), "image/gif"),
                          "the same paths, animated", "interpolation animation", pixelated=True))
    computed_now(s, why or "no analysis/interpolation.png", f"genlab interpolate {ctx.path}")


def _saved_latent_maps(ctx: RunContext, s: Section, got: artifacts.Saved) -> bool:
    """The figures `genlab latent` wrote, with their captions; False when none of them is there."""
    found = False
    for part in ("plane", "traversal", "scatter"):
        info = got.numbers.get(part)
        png = ctx.artifact_file(str(info.get("file", ""))) if isinstance(info, dict) else None
        if png:
            s.images.append(file_image(png, f"{info.get('caption', part)}; from {got.about}"))
            found = True
    if found and not got.numbers.get("encoder", True):
        s.notes.append("no encoder (a GAN): the class scatter of encoded images needs a VAE")
    return found


def _latent_section(ctx: RunContext, s: Section) -> None:
    got, why = ctx.saved(artifacts.LATENT)
    if got and _saved_latent_maps(ctx, s, got):
        return
    run = ctx.run
    if getattr(run.spec, "conditioning", "none") == "text":
        s.notes.append("latent maps are not drawn for text-conditional models")
        return
    computed_now(s, why or "analysis/latent.json names no figure that exists", f"genlab latent {ctx.path}")
    d = run.cfg.model.latent_dim
    if d == 2:
        plane = latent_plane(run, n=15)
        s.images.append(fig_image(plot_image_grid(
            plane.images, 15, row_labels=[f"{v:.2f}" for v in plane.ys], col_labels=[f"{v:.2f}" for v in plane.xs],
            xlabel="z[0]", ylabel="z[1]", cell_inches=0.42), "the 2-D latent plane decoded at normal quantiles"))
    t = traversal(run, steps=9, radius=3.0, seed=ctx.seed)
    s.images.append(fig_image(plot_image_grid(
        t.images, len(t.values), row_labels=[f"z[{i}]" for i in t.dims], col_labels=[f"{v:g}" for v in t.values],
        xlabel="value of the swept dimension"),
        f"traversal: each row sweeps one latent dimension (first {len(t.dims)} of {d}), the others fixed"))
    if "E" not in run.nets:
        s.notes.append("no encoder (a GAN): the class scatter of encoded images needs a VAE")
        return
    enc = encode_split(run, "test", limit=2000)
    pts, ratio = pca_2d(enc.points)
    axes = ("z[0]", "z[1]") if d <= 2 else (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})")
    how = "" if d <= 2 else f", projected from {d}-D with PCA"
    s.images.append(fig_image(plot_latent_scatter(pts, enc.labels, enc.class_names, axis_names=axes),
                              f"encoder means of {len(pts)} test images{how}, coloured by class"))


def _saved_coverage(ctx: RunContext, s: Section, got: artifacts.Saved) -> bool:
    """The histogram `genlab coverage` measured, redrawn from its numbers (or its figure when an older
    coverage.json holds no histograms); False when neither is usable."""
    try:
        cov = coverage_analysis.Coverage.from_dict(got.numbers)
    except GenlabError:
        png = ctx.artifact_file("coverage.png")
        if png is None:
            return False
        s.images.append(file_image(png, f"predicted classes of generated vs real test images; from {got.about}"))
        return True
    s.images.append(fig_image(plot_class_coverage(cov), f"predicted classes of {int(cov.generated.sum())} generated "
                                                        f"vs {int(cov.real.sum())} real test images ({cov.source}); "
                                                        f"from {got.about}"))
    numbers = [(k, got.numbers.get(k)) for k in ("entropy_normalized", "kl_to_real", "total_variation")]
    rows = [[k.replace("_", " "), _fmt(v)] for k, v in numbers if isinstance(v, (int, float))]
    if rows:
        s.tables.append(Table(["", ""], rows))
    return True


def _coverage_section(ctx: RunContext, s: Section) -> None:
    got, why = ctx.saved(artifacts.COVERAGE)
    if got and _saved_coverage(ctx, s, got):
        return
    run = ctx.run
    predictor, about = coverage_analysis.find_predictor(run)
    if predictor is None:
        s.notes.append(f"not available: {about} (`genlab coverage {ctx.path}` trains the dataset's classifier "
                       "once, caches it and draws the histogram; the next report includes it)")
        return
    cov = coverage_analysis.mode_coverage(run, n=2000, seed=ctx.seed, predictor=predictor)
    cov.source = about
    s.images.append(fig_image(plot_class_coverage(cov), f"predicted classes of 2000 generated vs real test images "
                                                        f"({about})"))
    computed_now(s, why or "analysis/coverage.json is not readable", f"genlab coverage {ctx.path}")


BUILDERS: dict[str, Callable[[RunContext, Section], None]] = {
    "summary": _summary_section,
    "config": _config_section,
    "metrics": _metrics_section,
    "losses": _losses_section,
    "metric-curves": _metric_curves_section,
    "progress": _progress_section,
    "samples": _samples_section,
    "interpolation": _interpolation_section,
    "latent": _latent_section,
    "coverage": _coverage_section,
}


def _safe(build: Callable[[RunContext, Section], None], ctx: RunContext, s: Section,
          log: Callable[[str], None]) -> None:
    try:
        build(ctx, s)
    except GenlabError as e:
        s.notes.append(f"not available: {e}")
    except Exception as e:  # one broken section must not lose the rest of the report
        s.notes.append(f"could not be drawn: {type(e).__name__}: {e}")
        log(f"warning: {ctx.path} section {s.id!r}: {type(e).__name__}: {e}")


def run_block(path: str | Path, index: int = 0, checkpoint: str = "last", device: str = "cpu", seed: int = 0,
              log: Callable[[str], None] = print, label: str = "") -> Block:
    path = Path(path)
    RunDir.of(path).require()
    ctx = RunContext(path=path, checkpoint=checkpoint, device=device, seed=seed)
    block = Block(id=f"run{index}", title=label or path.name, subtitle=str(path))
    for sid, title in RUN_SECTIONS.items():
        s = Section(id=f"run{index}-{sid}", title=title)
        _safe(BUILDERS[sid], ctx, s, log)
        block.sections.append(s)
    return block


# ---------------------------------------------------------------------------------- comparison and sweeps
def comparison_block(paths: Sequence[Path], labels: Sequence[str]) -> Block:
    block = Block(id="comparison", title="Comparison", subtitle=f"{len(paths)} runs")
    table = Section(id="comparison-metrics", title="Final metrics")
    per = [run_metrics(p) for p in paths]
    names: list[str] = []
    for values, _ in per:
        names += [k for k in values if k not in names]
    losses = [final_losses(p) for p in paths]
    loss_names: list[str] = []
    for lo in losses:
        loss_names += [k for k in lo if k not in loss_names]
    rows = []
    for label, (values, source), lo in zip(labels, per, losses):
        rows.append([label] + [_fmt(values[k]) if k in values else "not evaluated" for k in names]
                    + [_fmt(lo[k]) if k in lo else "" for k in loss_names])
    table.tables.append(Table(["run"] + [pretty(k) for k in names] + [f"{pretty(k)} (last epoch)" for k in loss_names],
                              rows))
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
    header = [k.rsplit(".", 1)[-1] for k in t.keys] + ["seeds (finished)"]
    for m in t.metrics:
        header += [f"{pretty(m)} best {'↑' if higher_is_better(m) else '↓'}", f"{pretty(m)} mean ± std"]
    body = []
    for c in t.cells:
        r = [str(c["values"].get(k, "")) for k in t.keys] + [f"{c['seeds']} ({c['finished']})"]
        for m in t.metrics:
            r += [_fmt(c[m]["best"]) if c[m]["n"] else "–", mean_std(c, m)]
        body.append(r)
    res.tables.append(Table(header, body))
    if 1 <= len(t.keys) <= 2 and t.primary:
        try:
            res.images.append(fig_image(heatmap_figure(t), f"{pretty(t.primary)} per cell"))
        except GenlabError as e:
            res.notes.append(f"no heatmap: {e}")
    block.sections.append(res)
    runs = Section(id="sweep-runs", title="Runs")
    ms = sorted({m for r in rows for m in r.metrics})
    runs.tables.append(Table(["cell", "seed", "state"] + [pretty(m) for m in ms],
                             [[r.cell, str(r.seed), r.state] + [_fmt(r.metrics[m]) if m in r.metrics else "–"
                                                                for m in ms] for r in rows]))
    block.sections.append(runs)
    gallery = Section(id="sweep-samples", title="Last samples per cell")
    metric = t.primary if t.evaluated else None
    for c in t.cells:
        cell_rows = [r for r in rows if r.cell == c["cell"] and sample_epochs(r.path)]
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
        gallery.images.append(Image(data_uri(png.read_bytes()), f"{c['cell']}: seed {pick.seed} ({why}), epoch "
                                                                 f"{epoch}", c["cell"], pixelated=True))
    if not gallery.images:
        gallery.notes.append("no run has written samples yet")
    block.sections.append(gallery)
    return block


# ------------------------------------------------------------------------------------------------ render
def render(blocks: Sequence[Block], title: str) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("genlab.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(
        title=title, blocks=blocks, version=__version__,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))


def _labels(paths: Sequence[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def build_report(paths: Sequence[str | Path], out: str | Path, checkpoint: str = "last", device: str = "cpu",
                 seed: int = 0, title: Optional[str] = None, log: Callable[[str], None] = print) -> Path:
    """Runs and/or sweep folders -> one HTML file at ``out``. Two or more runs add a comparison block."""
    if not paths:
        raise GenlabError("give at least one run or sweep folder")
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            raise GenlabError(f"{str(p)!r} is not a folder; give run folders (with config.yaml) or sweep folders "
                              "(with sweep.json)")
    sweeps = [p for p in paths if is_sweep_dir(p)]
    runs = [p for p in paths if p not in sweeps]
    blocks: list[Block] = []
    for p in sweeps:
        log(f"report: sweep {p}")
        blocks.append(sweep_block(p, log))
    labels = _labels(runs)
    if len(runs) > 1:
        blocks.append(comparison_block(runs, labels))
    for i, (p, label) in enumerate(zip(runs, labels)):
        log(f"report: run {p}")
        blocks.append(run_block(p, i, checkpoint, device, seed, log, label))
    title = title or ("genlab report: " + ", ".join([p.name for p in sweeps] + labels))
    text = render(blocks, title)
    return atomic_write_text(out, text)
