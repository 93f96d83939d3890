"""`genlab eval` and `genlab eval-folder`: metrics with the field's protocol, printed and written as JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from genlab.cli import app, console, on_ctrl_c, output_path, positive
from genlab.cli.progress import metric_progress
from genlab.cli.train import GUIDANCE_HELP, SOLVER_HELP, STEPS_HELP, check_sampling
from genlab.errors import ConfigError

FEATURES_HELP = ("auto (inception if its weights are on disk, else classifier) | inception | classifier | "
                 "dinov2-vits14 | dinov2-vitb14 (FD_DINOv2 features; no IS or coverage)")
DINOV2_WEIGHTS_HELP = "dinov2_vits14_pretrain.pth / dinov2_vitb14_pretrain.pth file (for --features dinov2-*)"


def extractor_weights(features: str, inception_weights: str | None, dinov2_weights: str | None) -> str | None:
    """The weights file for the chosen extractor's factory; a file for another extractor is refused."""
    dinov2 = features.startswith("dinov2")
    if dinov2_weights is not None and not dinov2:
        raise ConfigError(f"--dinov2-weights is for --features dinov2-vits14 or dinov2-vitb14, not {features}")
    if dinov2 and inception_weights is not None:
        raise ConfigError(f"--inception-weights is for the inception features; give {features}'s file "
                          "with --dinov2-weights")
    return dinov2_weights if dinov2 else inception_weights
TRUNCATION_HELP = "psi > 0: latents kept inside it (see --truncation-mode); recorded in the protocol"
TRUNCATION_MODE_HELP = ("resample (redraw every |z_i| > psi) | interp (z -> psi z, towards the prior mean 0; "
                        "genlab's models have no mapping network)")
METRICS_HELP = ("comma-separated: fid, kid, is, pr, coverage, fid_inf, ci95, copies, rfid, recon; for "
                "class-conditional runs also ifid, class_acc, cas")
RUN_METRICS_HELP = (METRICS_HELP + " (default: fid,kid,is,pr,coverage,fid_inf,ci95,copies; VAE-family runs add "
                                    "rfid,recon; dinov2 features drop is,coverage)")


def print_result(result: dict[str, Any], title: str) -> None:
    from genlab.metrics import flatten_results

    p = result.get("protocol", {})
    table = Table(title=title, caption=f"extractor {p.get('extractor')} ({str(p.get('extractor_hash', ''))[:12]}), "
                                       f"{p.get('num_generated')} generated vs {p.get('num_reference')} reference, "
                                       f"seed {p.get('seed')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in flatten_results(result).items():
        table.add_row(k, f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}")
    console.print(table)


@app.command("eval", help="Evaluate a run's generator against its dataset (writes eval.json in the run folder).")
def eval_run(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    metrics: str | None = typer.Option(None, "--metrics", help=RUN_METRICS_HELP),
    features: str = typer.Option("auto", "--features", help=FEATURES_HELP),
    num_samples: int = typer.Option(10_000, "--num-samples", help="generated images"),
    seed: int = typer.Option(0, "--seed"),
    split: str = typer.Option("test", "--split", help="reference split of the run's dataset"),
    batch_size: int = typer.Option(250, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05 file"),
    dinov2_weights: str | None = typer.Option(None, "--dinov2-weights", help=DINOV2_WEIGHTS_HELP),
    out: Path | None = typer.Option(None, "--out", help="JSON path (default: RUN/eval.json)"),
    device: str = typer.Option("cpu", "--device"),
    no_verify: bool = typer.Option(False, "--no-verify", help="use reference files whose md5 is not the published"),
    truncation: float | None = typer.Option(None, "--truncation", help=TRUNCATION_HELP),
    truncation_mode: str = typer.Option("resample", "--truncation-mode", help=TRUNCATION_MODE_HELP),
    truncation_sweep: str | None = typer.Option(
        None, "--truncation-sweep", help="e.g. 0.5,0.7,1.0,1.5: FID, precision and recall per psi (--metrics is "
        "not used), printed and written to RUN/analysis/truncation.png and .json"),
    steps: int | None = typer.Option(None, "--steps", help=STEPS_HELP + "; recorded in the protocol"),
    solver: str | None = typer.Option(None, "--solver", help=SOLVER_HELP),
    guidance: float | None = typer.Option(None, "--guidance", help=GUIDANCE_HELP),
    steps_sweep: str | None = typer.Option(
        None, "--steps-sweep", help="flow and diffusion models, e.g. 1,2,5,10,20,50: FID, network evaluations and "
        "seconds per 10k images per step count (--metrics is not used), written to RUN/analysis/steps.png and .json"),
) -> None:
    from genlab.api import load_run
    from genlab.evaluation import check_conditional_metrics, run_default_metrics, summary_line
    from genlab.sampling import as_truncation
    from genlab.training import distributed

    positive(num_samples, "--num-samples", "the number of generated images")
    positive(batch_size, "--batch-size", "images per batch")
    output_path(out, "--out")
    check_sampling(steps, solver, guidance)
    weights = extractor_weights(features, inception_weights, dinov2_weights)
    as_truncation(truncation if truncation is not None else 1.0, truncation_mode)  # checked before loading
    if steps_sweep is not None:
        from genlab.analysis.steps import parse_steps

        values = parse_steps(steps_sweep)
        if truncation_sweep is not None or steps is not None or out is not None:
            raise ConfigError("--steps-sweep evaluates each of its step counts and writes RUN/analysis/steps.json; "
                              "drop --steps, --truncation-sweep and --out")
        _steps_sweep(run_dir, values, checkpoint=checkpoint, solver=solver, guidance=guidance, features=features,
                     num_samples=num_samples, seed=seed, split=split, batch_size=batch_size,
                     inception_weights=weights, device=device, verify=False if no_verify else None)
        return
    if truncation_sweep is not None:
        if truncation is not None or out is not None:
            raise ConfigError("--truncation-sweep evaluates each of its psis and writes RUN/analysis/truncation.json; "
                              "drop --truncation and --out")
        _sweep(run_dir, truncation_sweep, truncation_mode, checkpoint=checkpoint, features=features,
               num_samples=num_samples, seed=seed, split=split, batch_size=batch_size,
               inception_weights=weights, device=device, verify=False if no_verify else None,
               sampling={"steps": steps, "solver": solver, "guidance": guidance})
        return
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            distributed.setup(device) as ctx:  # under torchrun: sampling and features sharded over the ranks
        run = load_run(run_dir, checkpoint, str(ctx.device(device))).with_sampling(steps, solver, guidance)
        metrics = metrics if metrics is not None else ",".join(run_default_metrics(run.loaded, features))
        check_conditional_metrics(run.loaded, metrics)  # before the "evaluating" line: the error is the only one
        path = out if out is not None else run.loaded.run.eval_json
        output_path(path, "--out")
        if ctx.is_main:
            console.print(f"evaluating {metrics} of {run.checkpoint.name} (step {run.step}) on {num_samples} "
                          f"generated images vs the {split} split")
        with metric_progress(console, ctx.is_main):
            result = run.evaluate(metrics, num_samples, features=features, seed=seed, split=split,
                                  batch_size=batch_size, inception_weights=weights, out=path,
                                  verify=False if no_verify else None, truncation=truncation,
                                  truncation_mode=truncation_mode)
    if ctx.is_main:
        trunc = f", truncation psi={truncation} ({truncation_mode})" if truncation is not None else ""
        print_result(result, f"genlab eval {run_dir} ({result['protocol']['checkpoint']}{trunc})")
        console.print(f"{summary_line(result)}; wrote {path}")


def _sweep(run_dir: Path, psis: str, mode: str, *, checkpoint: str, features: str, num_samples: int, seed: int,
           split: str, batch_size: int, inception_weights: str | None, device: str, verify: bool | None,
           sampling: dict | None = None) -> None:
    """`genlab eval RUN --truncation-sweep ...`: the curve, a table and RUN/analysis/truncation.png/.json
    (``sampling``: steps / solver / guidance of a flow or diffusion model)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.truncation import COLUMNS, parse_psis, truncation_sweep
    from genlab.api import load_run
    from genlab.reporting.plots import save_figure
    from genlab.reporting.truncation import plot_truncation

    values = parse_psis(psis)
    with on_ctrl_c("nothing was written (the curve is written when every psi is done)"):
        run = load_run(run_dir, checkpoint, device).with_sampling(**(sampling or {}))
        console.print(f"truncation sweep ({mode}) of {run.checkpoint.name} (step {run.step}): {len(values)} psis x "
                      f"{num_samples} generated images vs the {split} split")
        columns = (TextColumn("truncation sweep"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[last]}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("sweep", total=len(values), last="")

            def done(point: dict) -> None:
                bar.update(task, advance=1, last=f"psi {point['psi']:g}: FID {point['fid']:.2f}")

            numbers = truncation_sweep(run.loaded, values, mode=mode, features=features, num_samples=num_samples,
                                       seed=seed, split=split, batch_size=batch_size,
                                       inception_weights=inception_weights, device=device, verify=verify,
                                       on_point=done)
    table = Table(title=f"genlab eval {run_dir} --truncation-sweep ({mode})",
                  caption=f"extractor {numbers['extractor']} ({numbers['extractor_hash'][:12]}), {num_samples} "
                          f"generated per psi, seed {seed}, precision/recall k={numbers['pr_k']}")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for p in numbers["points"]:
        table.add_row(*(f"{p[c]:g}" if c == "psi" else f"{p[c]:.4f}" for c in COLUMNS))
    console.print(table)
    png = run.loaded.run.artifact("truncation.png")
    written = save_figure(plot_truncation(numbers), png, svg=False)
    written.append(write_numbers(run.path, png, numbers, Source.of(run.loaded, seed)))
    console.print(f"wrote {', '.join(str(w) for w in written)}")


def _steps_sweep(run_dir: Path, values: list[int], *, checkpoint: str, solver: str | None, guidance: float | None,
                 features: str, num_samples: int, seed: int, split: str, batch_size: int,
                 inception_weights: str | None, device: str, verify: bool | None) -> None:
    """`genlab eval RUN --steps-sweep ...`: FID against the ODE steps, a table and RUN/analysis/steps.png/.json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.analysis.steps import COLUMNS, steps_sweep
    from genlab.api import load_run
    from genlab.reporting.plots import save_figure
    from genlab.reporting.steps import plot_steps

    with on_ctrl_c("nothing was written (the curve is written when every step count is done)"):
        run = load_run(run_dir, checkpoint, device).with_sampling(guidance=guidance)
        run.loaded.with_sampling(steps=values[0], solver=solver)  # a one-step model is refused before the bar
        console.print(f"steps sweep of {run.checkpoint.name} (step {run.step}): {len(values)} step counts x "
                      f"{num_samples} generated images vs the {split} split")
        columns = (TextColumn("steps sweep"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[last]}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("sweep", total=len(values), last="")

            def done(point: dict) -> None:
                bar.update(task, advance=1, last=f"{point['steps']} steps: FID {point['fid']:.2f}")

            numbers = steps_sweep(run.loaded, values, solver=solver, features=features, num_samples=num_samples,
                                  seed=seed, split=split, batch_size=batch_size, inception_weights=inception_weights,
                                  device=device, verify=verify, on_point=done)
    guided = f", guidance {numbers['guidance']:g}" if numbers["guidance"] != 1.0 else ""
    table = Table(title=f"genlab eval {run_dir} --steps-sweep ({numbers['process']}, {numbers['solver']}{guided})",
                  caption=f"extractor {numbers['extractor']} ({numbers['extractor_hash'][:12]}), {num_samples} "
                          f"generated per step count, seed {seed}, sampling time on {device}")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for p in numbers["points"]:
        table.add_row(str(p["steps"]), str(p["nfe"]), f"{p['fid']:.4f}", f"{p['seconds_per_10k']:.1f}")
    console.print(table)
    png = run.loaded.run.artifact("steps.png")
    written = save_figure(plot_steps(numbers), png, svg=False)
    written.append(write_numbers(run.path, png, numbers, Source.of(run.loaded, seed)))
    console.print(f"wrote {', '.join(str(w) for w in written)}")


@app.command("eval-folder", help="Metrics of a folder of images against a dataset split or another folder.")
def eval_folder(
    folder: Path = typer.Argument(..., help="a folder of generated images"),
    against: str = typer.Option(..., "--against", help="DATASET[:SPLIT] (e.g. fashion-mnist:test) or a folder"),
    out: Path = typer.Option(Path("result.json"), "--out", help="JSON path"),
    metrics: str = typer.Option("fid,kid,is,pr,coverage,fid_inf,ci95", "--metrics", help=METRICS_HELP),
    features: str = typer.Option("auto", "--features", help=FEATURES_HELP),
    resolution: int | None = typer.Option(None, "--resolution", help="decode both sides at this size first "
                                          "(default: folders as they are, a dataset at its native size)"),
    channels: int | None = typer.Option(None, "--channels", help="1 or 3 (with --resolution)"),
    root: str | None = typer.Option(None, "--root", help="folder with the reference dataset's files"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(250, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights"),
    dinov2_weights: str | None = typer.Option(None, "--dinov2-weights", help=DINOV2_WEIGHTS_HELP),
    device: str = typer.Option("cpu", "--device"),
    no_verify: bool = typer.Option(False, "--no-verify", help="use reference files whose md5 is not the published"),
) -> None:
    from genlab.api import evaluate
    from genlab.evaluation import summary_line

    positive(batch_size, "--batch-size", "images per batch")
    positive(resolution, "--resolution", "an image side in pixels", minimum=8)
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"--channels {channels} is not allowed: 1 (grayscale) or 3 (RGB)")
    if channels is not None and resolution is None:
        raise ConfigError("--channels sets the size images are decoded at: give --resolution too, or neither "
                          "(the extractor takes images of any size)")
    output_path(out, "--out")
    weights = extractor_weights(features, inception_weights, dinov2_weights)
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            metric_progress(console):
        result = evaluate(folder, against, metrics=metrics, features=features, resolution=resolution,
                          channels=channels, root=root, seed=seed, batch_size=batch_size,
                          inception_weights=weights, device=device, out=out, verify=not no_verify)
    print_result(result, f"genlab eval-folder {folder} vs {against}")
    console.print(f"{summary_line(result)}; wrote {out}")
