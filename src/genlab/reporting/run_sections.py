"""The sections of one run in the report: summary, config, metrics, curves, progress, samples, and the analysis
sections (interpolation, latent maps, coverage, truncation, sampling steps, nearest training images).

Analysis sections show what the analysis commands left in RUN/analysis/ when it came from the report's
checkpoint, and compute only what is missing (the section then says so), so a report never trains the
coverage classifier itself. Each section is built on its own: one that cannot be drawn says why.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from genlab import signals
from genlab.analysis import artifacts
from genlab.analysis import coverage as coverage_analysis  # called through the module: tests replace its functions
from genlab.analysis.conditional import class_grid
from genlab.analysis.epoch_grids import sample_epochs
from genlab.analysis.interpolation import interpolation_rows
from genlab.analysis.neighbours import run_neighbours
from genlab.analysis.traversal import encode_split, latent_plane, pca_2d, traversal
from genlab.errors import GenlabError, RunError
from genlab.grids import gif_bytes
from genlab.objectives import LOSSES
from genlab.reporting.epoch_grids_figure import progress_figure
from genlab.reporting.metric_names import higher_is_better, pretty
from genlab.reporting.neighbours_plot import plot_neighbours
from genlab.reporting.page import Block, Image, Section, Table, data_uri, fig_image, file_image, fmt, grid_image
from genlab.reporting.plots import plot_class_coverage, plot_image_grid, plot_latent_scatter, plot_losses, plot_metrics
from genlab.reporting.records import eval_metrics, read_records, run_evaluation
from genlab.reporting.steps import plot_steps
from genlab.reporting.truncation import plot_truncation
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training.budget import Budget

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
    "truncation": "Truncation: quality vs diversity",
    "steps": "Sampling steps: quality vs cost",
    "neighbours": "Nearest training images",
}


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
    def checkpoint_file(self) -> Path | None:
        """The checkpoint the report samples from (found without loading it), None when there is none."""
        try:
            return self.rundir.checkpoint_path(self.checkpoint)
        except RunError:
            return None

    def saved(self, name: str) -> tuple[artifacts.Saved | None, str]:
        """An analysis command's numbers in RUN/analysis/ made from the report's checkpoint, or (None, why)."""
        return artifacts.saved(self.rundir, name, self.checkpoint_file)

    def artifact_file(self, name: str) -> Path | None:
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
    ev = run_evaluation(ctx.path)
    values, source = ev.metrics, ev.source
    if not values:
        s.notes.append("not evaluated: this run has no eval.json and no evaluation records. Evaluate it with "
                       "`genlab eval RUN`, or train with eval.every=N.")
        return
    rows = [[pretty(k), fmt(v), "higher" if higher_is_better(k) else "lower"] for k, v in values.items()]
    header = ["metric", "value", "better"]
    if ev.intervals:  # metric ci95: the bootstrap interval next to the number it bounds
        header.insert(2, "interval (ci95)")
        for k, row in zip(values, rows):
            row.insert(2, f"[{fmt(ev.intervals[k][0])}, {fmt(ev.intervals[k][1])}]" if k in ev.intervals else "")
    s.tables.append(Table(header, rows, caption=f"from {source}"))
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
        rows.append(["status", status_line(status, rd.read_config() if rd.read_config_text() else None)])
    train = read_records(rd).train
    if train:
        last = train[-1]
        losses = ", ".join(f"{k} {fmt(v)}" for k, v in last.items()
                           if k.startswith(("loss", "D(")) and isinstance(v, (int, float)))
        rows.append(["last record", f"step {last.get('step')}: {losses}"])
    ckpts = rd.checkpoint_files()
    rows.append(["checkpoints", ", ".join(p.name for p in ckpts[-3:]) or "none"])
    s.tables.append(Table(["", ""], rows))


def status_line(status: dict, config: dict | None) -> str:
    """``finished at step 1250 (1 of 2 epochs done): train.max_steps=1250 ran out first``: a finished run names
    the budget that ended it (status.json's ``ended_by``; runs written before it was recorded: the one its
    config and step show); other states say where the run is."""
    state, step, epoch, epochs = (status.get(k, "?") for k in ("state", "step", "epoch", "epochs"))
    if state != "finished":
        return f"{state} at epoch {epoch}/{epochs}, step {step}"
    ended = status.get("ended_by")
    if not ended and config is not None and isinstance(step, int) and isinstance(epoch, int):
        t = OmegaConf.create(config).train
        budget = Budget(int(t.epochs), 1, t.get("max_steps"), float(t.get("minutes") or 0.0))
        ended = budget.describe(budget.ended_by(step, epoch, None))
    return f"finished at step {step} ({epoch} of {epochs} epochs done)" + (f": {ended} ran out first" if ended else "")


def d_outputs_are_probabilities(config: dict | None) -> bool:
    """Whether the run's D(x) and D(G(z)) records are probabilities (a sigmoid of D's logits: train.loss bce),
    which meet at 0.5 when neither network wins; hinge, Wasserstein and relativistic runs record raw scores."""
    loss = str(OmegaConf.create(config).train.get("loss", "bce")) if config else "bce"
    return loss in LOSSES and LOSSES.get(loss).probabilities


def _losses_section(ctx: RunContext, s: Section) -> None:
    train = read_records(ctx.rundir).train
    if not train:
        s.notes.append("no training records yet (metrics.jsonl is empty)")
        return
    config = ctx.rundir.read_config() if ctx.rundir.read_config_text() else None
    probabilities = d_outputs_are_probabilities(config)
    caption = "faint: raw records; solid: EMA-smoothed."
    if any("D(x)" in r for r in train):
        caption += (" D(x) and D(G(z)) meet at 0.5 when neither network wins." if probabilities else
                    f" D(x) and D(G(z)) are D's raw scores (train.loss {OmegaConf.create(config).train.loss}), "
                    "not probabilities: no 0.5 line.")
    s.images.append(fig_image(plot_losses(train, d_probabilities=probabilities), caption))


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
    cond = run.conditioning
    n = 64
    if cond.captioned:
        s.images.append(grid_image(run.sampler(ctx.seed)(n), 8, f"{n} samples from {run.checkpoint.name} for random "
                                                                "captions (`genlab sample RUN --prompt ...` for one)"))
        return
    s.images.append(grid_image(run.sample(n, seed=ctx.seed), 8,
                               f"{n} samples from {run.checkpoint.name} (step {run.step}, seed {ctx.seed})"))
    if cond.takes_labels:
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
        gif_name = got.numbers.get("gif", "interpolation.gif")  # None: written with --no-gif (an older GIF is stale)
        gif = ctx.artifact_file(str(gif_name)) if gif_name else None
        if gif:
            s.images.append(file_image(gif, "the same paths, animated", pixelated=True))
        return
    run = ctx.run
    if run.conditioning.captioned:
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
    if run.conditioning.captioned:
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
    rows = [[k.replace("_", " "), fmt(v)] for k, v in numbers if isinstance(v, (int, float))]
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


def _truncation_section(ctx: RunContext, s: Section) -> None:
    """The curve `genlab eval --truncation-sweep` saved; never computed here (one evaluation per psi)."""
    got, why = ctx.saved(artifacts.TRUNCATION)
    if got is None:
        s.notes.append(f"not available: {why} (`genlab eval {ctx.path} --truncation-sweep 0.5,0.7,1.0,1.5` "
                       "writes it; the next report includes it)")
        return
    n = got.numbers
    s.images.append(fig_image(plot_truncation(n), f"FID, precision and recall against the truncation psi "
                                                  f"({n.get('mode', 'resample')}), {n.get('num_samples', '?')} "
                                                  f"samples per psi; from {got.about}"))
    s.tables.append(Table(["psi", "FID", "precision", "recall"],
                          [[fmt(p.get(k)) for k in ("psi", "fid", "precision", "recall")] for p in n["points"]]))
def _steps_section(ctx: RunContext, s: Section) -> None:
    """The curve `genlab eval --steps-sweep` saved (flow and diffusion models); never computed here."""
    got, why = ctx.saved(artifacts.STEPS)
    if got is None:
        s.notes.append(f"not available: {why} (flow and diffusion models: `genlab eval {ctx.path} --steps-sweep "
                       "1,2,5,10,20,50` writes it; the next report includes it)")
        return
    n = got.numbers
    s.images.append(fig_image(plot_steps(n), f"FID against the ODE steps and the sampling time "
                                             f"({n.get('solver', '?')}), {n.get('num_samples', '?')} samples per "
                                             f"point; from {got.about}"))
    s.tables.append(Table(["steps", "NFE", "FID", "seconds per 10k images"],
                          [[fmt(p.get(k)) for k in ("steps", "nfe", "fid", "seconds_per_10k")] for p in n["points"]]))


def _copies_note(ctx: RunContext, s: Section) -> None:
    """The ``copies`` rate of eval.json, when the run was evaluated with it."""
    data = ctx.rundir.read_eval()
    cop = data.get("copies") if isinstance(data, dict) else None
    if isinstance(cop, dict) and isinstance(cop.get("copy_rate"), (int, float)):
        real = cop.get("real_rate")
        s.notes.append(f"copies (eval.json): {cop['copy_rate']:.1%} of generated images are nearer a training image "
                       "than that image's own nearest training neighbour"
                       + (f", vs {real:.1%} of real test images" if isinstance(real, (int, float)) else ""))


def _neighbours_section(ctx: RunContext, s: Section) -> None:
    _copies_note(ctx, s)
    got, why = ctx.saved(artifacts.NEIGHBOURS)
    png = ctx.artifact_file("neighbours.png")
    if got and png:
        s.images.append(file_image(png, f"{got.numbers.get('about', 'nearest training images')}; from {got.about}"))
        spaces = got.numbers.get("spaces")
        rows = [[space, fmt(v.get("nearest_median")), str(v.get("units", ""))]
                for space, v in (spaces.items() if isinstance(spaces, dict) else []) if isinstance(v, dict)]
        if rows:
            s.tables.append(Table(["space", "median distance to the nearest training image", "units"], rows))
        return
    num, k = 4, 4  # cheap: pixels only (no extractor), a small figure
    nb = run_neighbours(ctx.run, num=num, k=k, spaces=("pixels",), seed=ctx.seed)
    s.images.append(fig_image(plot_neighbours(nb), f"{num} generated images and their {k} nearest of "
                                                   f"{len(nb.train)} training images by pixels (distance under "
                                                   "each, pixels in [-1, 1])"))
    computed_now(s, (why or "no analysis/neighbours.png") + "; pixel space only, the command adds feature space",
                 f"genlab neighbours {ctx.path}")


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
    "truncation": _truncation_section,
    "steps": _steps_section,
    "neighbours": _neighbours_section,
}


def _safe(build: Callable[[RunContext, Section], None], ctx: RunContext, s: Section,
          log: Callable[[str], None]) -> None:
    try:
        build(ctx, s)
    except Exception as e:
        signals.check()  # a Ctrl-C that a library turned into its own error stops the report
        if isinstance(e, GenlabError):
            s.notes.append(f"not available: {e}")
            return
        # one broken section must not lose the rest of the report
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
