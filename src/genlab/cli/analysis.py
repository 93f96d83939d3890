"""`genlab interpolate`, `genlab latent`, `genlab class-grid`, `genlab coverage` and `genlab plot ...`.

Outputs default to RUN/analysis/; every figure is written as PNG and SVG, and next to it a small JSON of its
numbers and the checkpoint they came from (``genlab.analysis.artifacts``), which `genlab report` reads.
"""
from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from genlab.cli import app, console, ctrl_c_means, device_option, on_ctrl_c, output_folder, output_path, positive
from genlab.errors import ConfigError

plot_app = typer.Typer(no_args_is_help=True, help="Plots from run folders: curves, metrics over epochs, progress.")
app.add_typer(plot_app, name="plot", help="Plots from run folders: loss curves, metrics over epochs, progress figure.")


def int_list(text: str | None, what: str) -> list[int] | None:
    """ "3,17,42" -> [3, 17, 42]; a clear error for anything else."""
    if text is None or not text.strip():
        return None
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers like 0,1,2, got {text!r}") from None


def _out(run_dir: Path, out: Path | None, name: str) -> Path:
    from genlab.rundir import RunDir

    return out if out is not None else RunDir.of(run_dir).artifact(name)


def _load(run_dir: Path, checkpoint: str, device: str):
    from genlab.sampling import load_run

    return load_run(run_dir, checkpoint, device)


def _wrote(paths) -> None:
    for p in paths:
        console.print(f"wrote {p}")


@app.command(help="Decode a path between latents (seeds, a saved tensor, or encoded test images for VAEs) into a "
                  "PNG strip/grid and an animated GIF.")
@ctrl_c_means("nothing was written")
def interpolate(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    seeds: str | None = typer.Option(None, "--seeds", help="comma-separated seeds, one latent each: a path "
                                                              "through all of them, e.g. 3,17,42"),
    latents: Path | None = typer.Option(None, "--latents", help="a .pt file with a (K, latent_dim) tensor or "
                                                                   "a dict with 'z' (e.g. RUN/noise.pt)"),
    indices: str | None = typer.Option(None, "--indices", help="with --latents: which rows, e.g. 0,5,9"),
    encode: str | None = typer.Option(None, "--encode", help="VAEs: test-set image indices to encode, e.g. 0,7"),
    rows: int = typer.Option(4, "--rows", help="without --seeds/--latents/--encode: this many random pairs"),
    steps: int = typer.Option(10, "--steps", help="images per leg, both ends included"),
    method: str = typer.Option("slerp", "--method", help="slerp (great circle, default) | lerp (straight line)"),
    seed: int = typer.Option(0, "--seed", help="seed of the random pairs"),
    label: int | None = typer.Option(None, "--label", help="class label for class-conditional models"),
    gif: bool = typer.Option(True, "--gif/--no-gif", help="also write an animated GIF next to the PNG"),
    frame_ms: int = typer.Option(120, "--frame-ms", help="GIF frame duration in milliseconds"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG path (default RUN/analysis/interpolation.png)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    device: str = device_option(),
) -> None:
    from genlab.analysis import interpolation as interp
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.grids import save_gif, save_strip

    chosen = [x for x in (seeds, latents, encode) if x]
    if len(chosen) > 1:
        raise ConfigError("give one of --seeds, --latents or --encode")
    positive(steps, "--steps", "images per leg, both ends included", minimum=2)
    positive(rows, "--rows", "random pairs, one per row")
    positive(frame_ms, "--frame-ms", "a GIF frame duration in milliseconds")
    output_path(out, suffixes=(".png",), siblings=(".gif", ".json"))
    run = _load(run_dir, checkpoint, device)
    if seeds or latents or encode:
        if seeds:
            points = interp.seed_latents(run, int_list(seeds, "--seeds") or [])
        elif latents:
            points = interp.load_latents(latents, int_list(indices, "--indices"))
        else:
            points = _encoded(run, int_list(encode, "--encode") or [])
        images = interp.interpolate(run, points, steps, method, label)
        n_rows, per_row = 1, len(images)
        what = f"a path through {len(points)} latents"
    else:
        images = interp.interpolation_rows(run, rows, steps, method, seed, label)
        n_rows, per_row = rows, steps
        what = f"{rows} random pairs"
    png = _out(run_dir, out, "interpolation.png").with_suffix(".png")
    written = [save_strip(images, png, nrow=per_row)]
    if gif:
        written.append(save_gif(images, png.with_suffix(".gif"), rows=n_rows, duration_ms=frame_ms))
    about = f"{method} interpolation of {what}, {steps} steps per leg"
    written.append(write_numbers(run_dir, png, {"about": about, "method": method, "steps": steps, "rows": n_rows,
                                                "per_row": per_row, "images": len(images), "label": label,
                                                "gif": png.with_suffix(".gif").name if gif else None},
                                 Source.of(run, seed)))
    console.print(f"{about}, {len(images)} images (checkpoint {run.checkpoint.name})")
    _wrote(written)


def _encoded(run, idx: list[int]):
    from genlab.analysis.interpolation import encode_images
    from genlab.data import load_dataset
    from genlab.data.base import to_float

    if len(idx) < 2:
        raise ConfigError("--encode needs at least two test-set image indices, e.g. --encode 0,7")
    data = load_dataset(run.cfg.data, split="test")
    bad = [i for i in idx if not 0 <= i < len(data)]
    if bad:
        raise ConfigError(f"--encode indices {bad} are out of range: the test split has {len(data)} images")
    labels = data.labels[idx] if data.labels is not None else None
    return encode_images(run, to_float(data.images[idx]), labels)


@app.command(help="Latent maps: the 2-D latent plane (latent_dim 2, or --plane-dims), a traversal of chosen "
                  "dimensions, and for VAEs a class scatter of encoded test images (PCA above 2-D).")
@ctrl_c_means("figures already written stay under the output folder; run the command again for the rest")
def latent(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    dims: str | None = typer.Option(None, "--dims", help="dimensions to traverse, e.g. 0,1,2 (default: first 8)"),
    steps: int = typer.Option(9, "--steps", help="traversal: values per dimension"),
    radius: float = typer.Option(3.0, "--radius", help="traversal (and linear plane): sweep [-r, r]"),
    plane_dims: str | None = typer.Option(None, "--plane-dims", help="plane over these two dimensions (default "
                                                                        "0,1 when latent_dim is 2)"),
    grid: str = typer.Option("quantile", "--grid", help="plane spacing: quantile (normal quantiles) | linear"),
    n: int = typer.Option(15, "-n", help="plane: values per axis"),
    limit: int = typer.Option(2000, "--limit", help="scatter: test images to encode"),
    seed: int = typer.Option(0, "--seed", help="traversal base latent for GANs"),
    label: int | None = typer.Option(None, "--label", help="class label for class-conditional models"),
    out: Path | None = typer.Option(None, "-o", "--out", help="output folder (default RUN/analysis)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    device: str = device_option(),
) -> None:
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.traversal import encode_split, latent_plane, pca_2d, traversal
    from genlab.reporting.plots import plot_image_grid, plot_latent_scatter, save_figure
    from genlab.rundir import RunDir

    positive(steps, "--steps", "values per traversed dimension", minimum=2)
    positive(n, "-n", "plane values per axis", minimum=2)
    positive(limit, "--limit", "test images to encode")
    if not radius > 0:
        raise ConfigError(f"--radius {radius} is not allowed: a positive number, the sweep is [-r, r]")
    output_folder(out, names=tuple(f"latent_{n}.{s}" for n in ("plane", "traversal", "scatter") for s in ("png", "svg"))
                  + ("latent.json",))
    run = _load(run_dir, checkpoint, device)
    folder = out if out is not None else RunDir.of(run_dir).analysis
    numbers: dict = {"latent_dim": run.cfg.model.latent_dim, "label": label, "encoder": "E" in run.nets}
    d = run.cfg.model.latent_dim
    pd = int_list(plane_dims, "--plane-dims") or ([0, 1] if d == 2 else None)
    written: list[Path] = []
    if pd:
        plane = latent_plane(run, n=n, radius=radius, grid=grid, dims=pd, label=label)
        fig = plot_image_grid(plane.images, n, row_labels=[f"{v:.2f}" for v in plane.ys],
                              col_labels=[f"{v:.2f}" for v in plane.xs], xlabel=f"z[{pd[0]}]", ylabel=f"z[{pd[1]}]",
                              cell_inches=0.42, title=f"latent plane ({grid} grid)")
        written += save_figure(fig, folder / "latent_plane.png")
        numbers["plane"] = {"file": "latent_plane.png", "dims": pd, "grid": grid, "n": n,
                            "caption": f"the latent plane over z[{pd[0]}], z[{pd[1]}] ({grid} grid)"}
    else:
        console.print(f"latent_dim is {d}: no plane unless --plane-dims A,B is given")
    t = traversal(run, int_list(dims, "--dims"), steps, radius, seed, label=label)
    fig = plot_image_grid(t.images, steps, row_labels=[f"z[{i}]" for i in t.dims],
                          col_labels=[f"{v:g}" for v in t.values], xlabel="value of the swept dimension",
                          title="latent traversal")
    written += save_figure(fig, folder / "latent_traversal.png")
    numbers["traversal"] = {"file": "latent_traversal.png", "dims": t.dims, "steps": steps, "radius": radius,
                            "caption": f"traversal: each row sweeps one latent dimension ({len(t.dims)} of {d}), "
                                       "the others fixed"}
    if "E" in run.nets:
        enc = encode_split(run, "test", limit)
        pts, ratio = pca_2d(enc.points)
        axes = ("z[0]", "z[1]") if d <= 2 else (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})")
        fig = plot_latent_scatter(pts, enc.labels, enc.class_names, axis_names=axes,
                                  title=f"encoded test images ({len(pts)})")
        written += save_figure(fig, folder / "latent_scatter.png")
        how = "" if d <= 2 else f", projected from {d}-D with PCA"
        numbers["scatter"] = {"file": "latent_scatter.png", "n": len(pts),
                              "explained_variance": [float(r) for r in ratio[:2]],
                              "caption": f"encoder means of {len(pts)} test images{how}, coloured by class"}
    else:
        console.print(f"model {run.cfg.model.name} has no encoder: no class scatter (that needs a VAE)")
    written.append(write_numbers(run_dir, folder / "latent.png", numbers, Source.of(run, seed)))
    _wrote(written)


@app.command("class-grid", help="Class-conditional models: one row per class (same latents in every column).")
def class_grid_cmd(
    run_dir: Path = typer.Argument(..., help="a run folder of a class-conditional model"),
    per_class: int = typer.Option(8, "-n", help="images per class"),
    seed: int = typer.Option(0, "--seed"),
    independent: bool = typer.Option(False, "--independent", help="fresh latents per row instead of shared ones"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG (default RUN/analysis/class_grid.png)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    device: str = device_option(),
) -> None:
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.conditional import class_grid
    from genlab.reporting.plots import plot_image_grid, save_figure

    positive(per_class, "-n", "images per class")
    output_path(out, suffixes=(".png",), siblings=(".svg", ".json"))
    with on_ctrl_c("nothing was written"):
        run = _load(run_dir, checkpoint, device)
        g = class_grid(run, per_class, seed, shared_noise=not independent)
    about = "one row per class" + ("" if independent else ", same latents in each column")
    fig = plot_image_grid(g.images, g.per_class, row_labels=g.class_names, title=about)
    png = _out(run_dir, out, "class_grid.png")
    written = save_figure(fig, png)
    written.append(write_numbers(run_dir, png, {"about": about, "per_class": g.per_class, "classes": g.class_names,
                                                "shared_noise": not independent}, Source.of(run, seed)))
    _wrote(written)


@app.command(help="Mode coverage: class histogram of generated vs real images, by the metrics package's classifier.")
def coverage(
    run_dir: Path = typer.Argument(..., help="a run folder (labeled dataset)"),
    n: int = typer.Option(2000, "-n", help="generated images"),
    real: int = typer.Option(2000, "--real", help="real test images"),
    seed: int = typer.Option(0, "--seed"),
    train_classifier: bool = typer.Option(True, "--train-classifier/--cached-only",
                                          help="train the dataset's classifier once (cached) when none is cached"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG (default RUN/analysis/coverage.png)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    device: str = device_option(),
) -> None:
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.coverage import find_predictor, mode_coverage
    from genlab.reporting.plots import plot_class_coverage, save_figure

    positive(n, "-n", "the number of generated images")
    positive(real, "--real", "the number of real test images")
    output_path(out, suffixes=(".png",), siblings=(".svg", ".json"))
    run = _load(run_dir, checkpoint, device)
    with on_ctrl_c("nothing was written (a classifier already trained stays in the cache)"):
        predictor, why = find_predictor(run, train=train_classifier)
        if predictor is None:
            console.print(Text.assemble(("coverage skipped:", "yellow"), f" {why}"))
            return
        cov = mode_coverage(run, n=n, seed=seed, predictor=predictor, real_limit=real)
    cov.source = why
    png = _out(run_dir, out, "coverage.png")
    written = save_figure(plot_class_coverage(cov), png)
    written.append(write_numbers(run_dir, png, cov.to_dict(), Source.of(run, seed)))
    s = cov.summary()
    console.print(f"{s['classes_covered']}/{s['classes_present']} classes covered, total variation "
                  f"{s['total_variation']:.3f}" + (f"; missing: {', '.join(s['missing'])}" if s["missing"] else ""))
    _wrote(written)


@app.command(help="Memorization check: for N generated images their k nearest training images in extractor "
                  "feature space and in pixel space, as a figure (RUN/analysis/neighbours.png) and numbers "
                  "(neighbours.json).")
def neighbours(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    num: int = typer.Option(8, "--num", help="generated images, one row each (per space)"),
    k: int = typer.Option(5, "--k", help="nearest training images shown for each"),
    space: str = typer.Option("both", "--space", help="features | pixels | both"),
    features: str = typer.Option("auto", "--features", help="feature space: auto (inception if its weights are on "
                                                            "disk, else classifier) | inception | classifier"),
    inception_weights: str | None = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05 file"),
    seed: int = typer.Option(0, "--seed", help="latent seed of the generated images"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG (default RUN/analysis/neighbours.png)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    device: str = device_option(),
) -> None:
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.neighbours import SPACES, UNITS, run_neighbours
    from genlab.evaluation import choose_features, reference_of
    from genlab.metrics.evaluate import resolve_extractor
    from genlab.reporting.neighbours_plot import plot_neighbours
    from genlab.reporting.plots import save_figure

    positive(num, "--num", "the number of generated images")
    positive(k, "--k", "the number of neighbours shown")
    if space not in (*SPACES, "both"):
        raise ConfigError(f"--space {space!r} is not allowed: features, pixels or both")
    spaces = SPACES if space == "both" else (space,)
    output_path(out, suffixes=(".png",), siblings=(".svg", ".json"))
    run = _load(run_dir, checkpoint, device)
    with on_ctrl_c("nothing was written (a classifier already trained stays in the cache)"):
        ext = None
        if "features" in spaces:
            name = choose_features(features, inception_weights)
            ext = resolve_extractor(name, reference_of(run.cfg, "train"), inception_weights, device)
        nb = run_neighbours(run, num=num, k=k, spaces=spaces, seed=seed, extractor=ext)
    png = _out(run_dir, out, "neighbours.png")
    fig = plot_neighbours(nb, title=f"nearest training images of {num} samples")
    written = save_figure(fig, png)
    numbers = {"about": f"{k} nearest of {len(nb.train)} training images ({', '.join(spaces)}) for {num} generated "
                        "images", **nb.to_dict()}
    written.append(write_numbers(run_dir, png, numbers, Source.of(run, seed)))
    for s in nb.spaces:
        console.print(f"{s.space}: median distance to the nearest training image "
                      f"{s.to_dict()['nearest_median']:.4g} ({UNITS[s.space]})")
    _wrote(written)


# ------------------------------------------------------------------------------------------------- plots
@plot_app.command("curves", help="Loss curves (raw and EMA); GANs: D(x) and D(G(z)) (with the 0.5 line when they are "
                                 "probabilities: train.loss bce); VAEs: "
                                 "reconstruction, KL and total.")
def plot_curves(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    smoothing: float = typer.Option(0.9, "--smoothing", help="EMA weight on the past, 0 = raw only"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG (default RUN/analysis/curves.png; + .svg)"),
    svg: bool = typer.Option(True, "--svg/--no-svg", help="also write an SVG next to the PNG"),
) -> None:
    from genlab.analysis.artifacts import write_numbers
    from genlab.reporting.plots import plot_losses, save_figure
    from genlab.reporting.records import final_losses, read_records
    from genlab.reporting.run_sections import d_outputs_are_probabilities
    from genlab.rundir import RunDir

    if not 0 <= smoothing < 1:
        raise ConfigError(f"--smoothing {smoothing} is not allowed: an EMA weight in [0, 1) (0 = raw curves only)")
    output_path(out, suffixes=(".png",), siblings=(".svg", ".json"))
    rd = RunDir.of(run_dir).require()
    train = read_records(run_dir).train
    fig = plot_losses(train, title=run_dir.name, smoothing=smoothing,
                      d_probabilities=d_outputs_are_probabilities(rd.read_config()))
    png = _out(run_dir, out, "curves.png")
    written = save_figure(fig, png, svg=svg)
    written.append(write_numbers(run_dir, png, {"step": train[-1].get("step"), "epoch": train[-1].get("epoch"),
                                                "smoothing": smoothing, "final_losses": final_losses(run_dir)}))
    _wrote(written)


@plot_app.command("metric", help="Evaluation metrics over epochs for one or several runs in one figure "
                                 "(e.g. DCGAN vs WGAN-GP vs ACGAN).")
def plot_metric(
    run_dirs: list[Path] = typer.Argument(..., help="run folders"),
    metric: str | None = typer.Option(None, "--metric", help="comma-separated metrics (default: all evaluated)"),
    labels: str | None = typer.Option(None, "--labels", help="comma-separated legend labels, one per run"),
    out: Path = typer.Option(Path("metrics.png"), "-o", "--out", help="PNG (+ .svg next to it)"),
    svg: bool = typer.Option(True, "--svg/--no-svg", help="also write an SVG next to the PNG"),
) -> None:
    from genlab.reporting.plots import plot_metrics, save_figure
    from genlab.rundir import RunDir

    output_path(out, suffixes=(".png",), siblings=(".svg",))
    for r in run_dirs:
        RunDir.of(r).require()
    names = [x.strip() for x in labels.split(",")] if labels else [r.name for r in run_dirs]
    if len(names) != len(run_dirs):
        raise ConfigError(f"--labels has {len(names)} labels for {len(run_dirs)} runs")
    metrics = [m.strip() for m in metric.split(",") if m.strip()] if metric else None
    fig = plot_metrics(list(zip(names, run_dirs)), metrics, warn=lambda line: console.print(line, soft_wrap=True))
    _wrote(save_figure(fig, out, svg=svg))


@plot_app.command("progress", help="The fixed-noise grids of the saved epochs (samples/epoch_*.png) in one figure.")
def plot_progress(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    max_panels: int = typer.Option(10, "--max-panels", help="at most this many epochs, evenly spread, last included"),
    epochs: str | None = typer.Option(None, "--epochs", help="exact epochs, e.g. 30,60,90"),
    columns: int = typer.Option(5, "--columns", help="panels per row"),
    out: Path | None = typer.Option(None, "-o", "--out", help="PNG (default RUN/analysis/progress.png; + .svg)"),
    svg: bool = typer.Option(True, "--svg/--no-svg", help="also write an SVG next to the PNG"),
) -> None:
    from genlab.analysis.artifacts import write_numbers
    from genlab.analysis.epoch_grids import chosen_epochs, sample_epochs
    from genlab.reporting.epoch_grids_figure import progress_figure
    from genlab.reporting.plots import save_figure

    positive(columns, "--columns", "panels per row")
    positive(max_panels, "--max-panels", "the number of epochs shown")
    output_path(out, suffixes=(".png",), siblings=(".svg", ".json"))
    shown = int_list(epochs, "--epochs")
    fig = progress_figure(run_dir, max_panels, shown, columns)
    png = _out(run_dir, out, "progress.png")
    written = save_figure(fig, png, svg=svg)
    written.append(write_numbers(run_dir, png, {"epochs": chosen_epochs(run_dir, max_panels, shown),
                                                "last_saved_epoch": max(sample_epochs(run_dir))}))
    _wrote(written)
