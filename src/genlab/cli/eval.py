"""`genlab eval` and `genlab eval-folder`: metrics with the field's protocol, printed and written as JSON."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from genlab.cli import app, console, device_option, on_ctrl_c, output_path, positive
from genlab.cli.progress_bars import metric_progress
from genlab.cli.train import GUIDANCE_HELP, SOLVER_HELP, STEPS_HELP
from genlab.errors import ConfigError
from genlab.metrics.protocols import BATCH_SIZE, PROTOCOLS
from genlab.metrics.protocols import resolve as resolve_protocol

FEATURES_HELP = ("auto (inception if its weights are on disk or can be downloaded, else classifier) | inception | "
                 "classifier | dinov2-vitl14 | dinov2-vitb14 | dinov2-vits14 (FD_DINOv2 features; no IS or coverage) "
                 "| clip-vitl14-336 (CMMD's CLIP embeddings); default: the protocol's")
DINOV2_WEIGHTS_HELP = ("dinov2_vit{l,b,s}14_pretrain.pth file (for --features dinov2-* or the fd_dinov2 metric)")
CLIP_WEIGHTS_HELP = "ViT-L-14-336px.pt file (OpenAI's CLIP; for --features clip-vitl14-336 or the cmmd metric)"
PROTOCOL_HELP = "; ".join(f"{name}: {p.summary}" for name, p in PROTOCOLS.items())
RESIZE_HELP = ("the Inception resize of the compared table: legacy (pytorch-fid's bilinear; --protocol paper's "
               "default) | clean (clean-fid's bicubic)")
REFERENCE_STATS_HELP = ("a mu/sigma .npz (pytorch-fid, TTUR, clean-fid, StudioGAN; `genlab features stats`) to "
                        "compare with instead of the split's statistics (its sha256 goes into the protocol; metrics: "
                        "fid, fid_inf, vendi)")


def _names(metrics: str | None) -> set[str]:
    return {m.strip() for m in (metrics or "").split(",") if m.strip()}


def extractor_weights(features: str | None, inception_weights: str | None, dinov2_weights: str | None,
                      clip_weights: str | None = None, metrics: str | None = None) -> str | None:
    """The weights file for the chosen extractor's factory; a file for an extractor nothing uses is refused
    (``--dinov2-weights`` also serves ``fd_dinov2``, ``--clip-weights`` also ``cmmd``)."""
    features = features or "auto"
    dinov2, clip, asked = features.startswith("dinov2"), features.startswith("clip"), _names(metrics)
    if dinov2_weights is not None and not dinov2 and "fd_dinov2" not in asked:
        raise ConfigError(f"--dinov2-weights is for --features dinov2-vitl14, dinov2-vitb14 or dinov2-vits14, or "
                          f"the fd_dinov2 metric; not for {features}")
    if clip_weights is not None and not clip and "cmmd" not in asked:
        raise ConfigError(f"--clip-weights is for --features clip-vitl14-336 or the cmmd metric, not {features}")
    if (dinov2 or clip) and inception_weights is not None:
        raise ConfigError(f"--inception-weights is for the inception features; give {features}'s file "
                          f"with --{'dinov2' if dinov2 else 'clip'}-weights")
    return dinov2_weights if dinov2 else clip_weights if clip else inception_weights


def request_of(*, metrics: str | None, features: str | None, num_samples: int | None, seed: int,
               split: str | None, protocol: str, resize: str | None, reference_stats: Path | None, batch_size: int,
               inception_weights: str | None, dinov2_weights: str | None, clip_weights: str | None,
               no_verify: bool, out: Path | None = None, **fields: Any) -> Any:
    """The ``EvalRequest`` the eval commands' flags ask for, checked once (one line for a bad flag, before any
    work); ``fields``: truncation / truncation_mode, steps / solver / guidance."""
    from genlab import EvalOptions, EvalRequest

    PROTOCOLS.get(protocol)
    if out is not None:
        output_path(out, "--out", (".json",))
    main = resolve_protocol(protocol, features=features, resize=resize).features
    weights = extractor_weights(main, inception_weights, dinov2_weights, clip_weights, metrics)
    options = EvalOptions(protocol=protocol, resize=resize, fd_dinov2_weights=dinov2_weights, cmmd_weights=clip_weights)
    return EvalRequest.of(metrics, num_samples, features=features, seed=seed, split=split, batch_size=batch_size,
                          inception_weights=weights, verify=False if no_verify else None, options=options,
                          reference_stats=reference_stats, out=out, **fields)


TRUNCATION_HELP = "psi > 0: latents kept inside it (see --truncation-mode); recorded in the protocol"
TRUNCATION_MODE_HELP = ("resample (redraw every |z_i| > psi) | interp (z -> psi z, towards the prior mean 0; "
                        "genlab's models have no mapping network)")
METRICS_HELP = ("comma-separated: fid, kid, is, pr, coverage, fid_inf, ci95, copies, rfid, recon, fd_dinov2 "
                "(DINOv2 ViT-L/14), cmmd (CLIP ViT-L/14@336), vendi (diversity); for class-conditional runs also "
                "ifid, class_acc, cas")
RUN_METRICS_HELP = (METRICS_HELP + " (default: fid,kid,is,pr,coverage,fid_inf,ci95,copies; VAE-family runs add "
                                    "rfid,recon; dinov2 features drop is,coverage; the train split drops copies; "
                                    "--reference-stats keeps fid,fid_inf)")


def print_result(result: dict[str, Any], title: str) -> None:
    from genlab.metrics import flatten_results

    p = result.get("protocol", {})
    own = "".join(f", {m}: {e.get('name')} ({str(e.get('hash', ''))[:12]})"
                  for m, e in (p.get("extractors") or {}).items())
    table = Table(title=title, caption=f"extractor {p.get('extractor')} ({str(p.get('extractor_hash', ''))[:12]})"
                                       f"{own}, {p.get('num_generated')} generated vs "
                                       f"{p.get('num_reference') or 'a statistics file of'} reference, "
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
    features: str | None = typer.Option(None, "--features", help=FEATURES_HELP),
    num_samples: int | None = typer.Option(None, "--num-samples", help="generated images (default: the protocol's: "
                                           "10000 for genlab, 50000 for paper)"),
    seed: int = typer.Option(0, "--seed"),
    split: str | None = typer.Option(None, "--split", help="reference split of the run's dataset (default: the "
                                     "protocol's: test for genlab, train for paper)"),
    protocol: str = typer.Option("genlab", "--protocol", help=PROTOCOL_HELP),
    resize: str | None = typer.Option(None, "--resize", help=RESIZE_HELP),
    reference_stats: Path | None = typer.Option(None, "--reference-stats", help=REFERENCE_STATS_HELP),
    batch_size: int = typer.Option(BATCH_SIZE, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05 file"),
    dinov2_weights: str | None = typer.Option(None, "--dinov2-weights", help=DINOV2_WEIGHTS_HELP),
    clip_weights: str | None = typer.Option(None, "--clip-weights", help=CLIP_WEIGHTS_HELP),
    out: Path | None = typer.Option(None, "--out", help="JSON path (default: RUN/eval.json)"),
    device: str = device_option(),
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
    from genlab.training import distributed

    request = request_of(metrics=metrics, features=features, num_samples=num_samples, seed=seed, split=split,
                         protocol=protocol, resize=resize, reference_stats=reference_stats, batch_size=batch_size,
                         inception_weights=inception_weights, dinov2_weights=dinov2_weights,
                         clip_weights=clip_weights, no_verify=no_verify, out=out, truncation=truncation,
                         truncation_mode=truncation_mode, steps=steps, solver=solver, guidance=guidance)
    if steps_sweep is not None:
        from genlab.analysis.steps import parse_steps

        values = parse_steps(steps_sweep)
        if truncation_sweep is not None or steps is not None or out is not None:
            raise ConfigError("--steps-sweep evaluates each of its step counts and writes RUN/analysis/steps.json; "
                              "drop --steps, --truncation-sweep and --out")
        _steps_sweep(run_dir, values, checkpoint=checkpoint, device=device, request=request)
        return
    if truncation_sweep is not None:
        if truncation is not None or out is not None or protocol != "genlab" or reference_stats is not None:
            raise ConfigError("--truncation-sweep evaluates each of its psis and writes RUN/analysis/truncation.json; "
                              "drop --truncation, --out, --protocol and --reference-stats")
        _sweep(run_dir, truncation_sweep, truncation_mode, checkpoint=checkpoint, device=device, request=request)
        return
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            distributed.setup(device) as ctx:  # under torchrun: sampling and features sharded over the ranks
        run = load_run(run_dir, checkpoint, str(ctx.device(device)))
        if request.out is None:
            request = replace(request, out=run.path / "eval.json")
        names = run.metrics_for(request)  # before the "evaluating" line: a refusal is the only line
        if ctx.is_main:
            settings = request.settings
            against = f"the {settings.split} split" if reference_stats is None else str(reference_stats)
            console.print(f"evaluating {','.join(names)} of {run.checkpoint.name} (step {run.step}) on "
                          f"{settings.num_samples} generated images vs {against} (protocol {protocol})")
        with metric_progress(console, ctx.is_main):
            result = run.evaluate(request=request)
    if ctx.is_main:
        trunc = f", truncation psi={truncation} ({truncation_mode})" if truncation is not None else ""
        print_result(result, f"genlab eval {run_dir} ({result['protocol']['checkpoint']}{trunc})")
        console.print(f"{result.summary_line()}; wrote {request.out}")


def _sweep(run_dir: Path, psis: str, mode: str, *, checkpoint: str, device: str, request: Any) -> None:
    """`genlab eval RUN --truncation-sweep ...`: the curve, a table and RUN/analysis/truncation.png/.json (each
    point measured as ``request`` asks, with its steps / solver / guidance for a flow or diffusion model)."""
    from genlab.analysis.truncation import COLUMNS, parse_psis, truncation_sweep
    from genlab.api import load_run
    from genlab.reporting.truncation import plot_truncation

    values = parse_psis(psis)
    with on_ctrl_c("nothing was written (the curve is written when every psi is done)"):
        run = load_run(run_dir, checkpoint, device).with_sampling(**request.sampling)
        settings = request.settings
        num_samples, seed = settings.num_samples, request.seed
        console.print(f"truncation sweep ({mode}) of {run.checkpoint.name} (step {run.step}): {len(values)} psis x "
                      f"{num_samples} generated images vs the {settings.split} split")
        numbers = _with_bar("truncation sweep", len(values), lambda p: f"psi {p['psi']:g}: FID {p['fid']:.2f}",
                            lambda done: truncation_sweep(run.loaded, values, mode=mode, request=request,
                                                          on_point=done))
    table = Table(title=f"genlab eval {run_dir} --truncation-sweep ({mode})",
                  caption=f"extractor {numbers['extractor']} ({numbers['extractor_hash'][:12]}), {num_samples} "
                          f"generated per psi, seed {seed}, precision/recall k={numbers['pr_k']}")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for p in numbers["points"]:
        table.add_row(*(f"{p[c]:g}" if c == "psi" else f"{p[c]:.4f}" for c in COLUMNS))
    console.print(table)
    _write_curve(run, "truncation", plot_truncation(numbers), numbers, seed)


def _steps_sweep(run_dir: Path, values: list[int], *, checkpoint: str, device: str, request: Any) -> None:
    """`genlab eval RUN --steps-sweep ...`: FID against the ODE steps, a table and RUN/analysis/steps.png/.json."""
    from genlab.analysis.steps import COLUMNS, steps_sweep
    from genlab.api import load_run
    from genlab.reporting.steps import plot_steps

    with on_ctrl_c("nothing was written (the curve is written when every step count is done)"):
        run = load_run(run_dir, checkpoint, device).with_sampling(guidance=request.guidance)
        run.loaded.with_sampling(steps=values[0], solver=request.solver)  # a one-step model: refused before the bar
        settings = request.settings
        num_samples, seed = settings.num_samples, request.seed
        console.print(f"steps sweep of {run.checkpoint.name} (step {run.step}): {len(values)} step counts x "
                      f"{num_samples} generated images vs the {settings.split} split")
        numbers = _with_bar("steps sweep", len(values), lambda p: f"{p['steps']} steps: FID {p['fid']:.2f}",
                            lambda done: steps_sweep(run.loaded, values, request=request, on_point=done))
    guided = f", guidance {numbers['guidance']:g}" if numbers["guidance"] != 1.0 else ""
    table = Table(title=f"genlab eval {run_dir} --steps-sweep ({numbers['process']}, {numbers['solver']}{guided})",
                  caption=f"extractor {numbers['extractor']} ({numbers['extractor_hash'][:12]}), {num_samples} "
                          f"generated per step count, seed {seed}, sampling time on {device}")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for p in numbers["points"]:
        table.add_row(str(p["steps"]), str(p["nfe"]), f"{p['fid']:.4f}", f"{p['seconds_per_10k']:.1f}")
    console.print(table)
    _write_curve(run, "steps", plot_steps(numbers), numbers, seed)


def _with_bar(label: str, total: int, point_text: Callable[[dict], str],
              sweep: Callable[[Callable[[dict], None]], dict]) -> dict:
    """``sweep(on_point)`` under a Rich bar of ``total`` points, the last one named by ``point_text``."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from genlab.progress import Progress

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("sweep", total=total, last="")
        return sweep(lambda point: bar.update(task, advance=1, last=point_text(point)))


def _write_curve(run: Any, name: str, figure: Any, numbers: dict, seed: int) -> None:
    """RUN/analysis/NAME.png and NAME.json (the numbers the report redraws the curve from)."""
    from genlab.analysis.artifacts import Source, write_numbers
    from genlab.reporting.plots import save_figure

    png = run.loaded.run.artifact(f"{name}.png")
    written = save_figure(figure, png, svg=False)
    written.append(write_numbers(run.path, png, numbers, Source.of(run.loaded, seed)))
    console.print(f"wrote {', '.join(str(w) for w in written)}")


@app.command("eval-folder", help="Metrics of a folder of images against a dataset split, another folder or a "
                                  "statistics file.")
def eval_folder(
    folder: Path = typer.Argument(..., help="a folder of generated images"),
    against: str | None = typer.Option(None, "--against", help="DATASET[:SPLIT] (e.g. fashion-mnist:test) or a "
                                       "folder (needed unless --reference-stats)"),
    out: Path = typer.Option(Path("result.json"), "--out", help="JSON path"),
    metrics: str | None = typer.Option(None, "--metrics", help=METRICS_HELP + " (default: fid,kid,is,pr,coverage,"
                                       "fid_inf,ci95; with --reference-stats fid,fid_inf)"),
    features: str | None = typer.Option(None, "--features", help=FEATURES_HELP),
    protocol: str = typer.Option("genlab", "--protocol", help=PROTOCOL_HELP),
    resize: str | None = typer.Option(None, "--resize", help=RESIZE_HELP),
    reference_stats: Path | None = typer.Option(None, "--reference-stats", help=REFERENCE_STATS_HELP),
    resolution: int | None = typer.Option(None, "--resolution", help="decode both sides at this size first "
                                          "(default: folders as they are, a dataset at its native size)"),
    channels: int | None = typer.Option(None, "--channels", help="1 or 3 (with --resolution)"),
    root: str | None = typer.Option(None, "--root", help="folder with the reference dataset's files"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(BATCH_SIZE, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights"),
    dinov2_weights: str | None = typer.Option(None, "--dinov2-weights", help=DINOV2_WEIGHTS_HELP),
    clip_weights: str | None = typer.Option(None, "--clip-weights", help=CLIP_WEIGHTS_HELP),
    device: str = device_option(),
    no_verify: bool = typer.Option(False, "--no-verify", help="use reference files whose md5 is not the published"),
) -> None:
    from genlab.api import evaluate

    positive(resolution, "--resolution", "an image side in pixels", minimum=8)
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"--channels {channels} is not allowed: 1 (grayscale) or 3 (RGB)")
    if channels is not None and resolution is None:
        raise ConfigError("--channels sets the size images are decoded at: give --resolution too, or neither "
                          "(the extractor takes images of any size)")
    if against is None and reference_stats is None:
        raise ConfigError("compare the folder with something: --against DATASET[:SPLIT] or FOLDER, or "
                          "--reference-stats FILE.npz")
    request = request_of(metrics=metrics, features=features, num_samples=None, seed=seed, split=None,
                         protocol=protocol, resize=resize, reference_stats=reference_stats, batch_size=batch_size,
                         inception_weights=inception_weights, dinov2_weights=dinov2_weights,
                         clip_weights=clip_weights, no_verify=no_verify, out=out)
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            metric_progress(console):
        result = evaluate(folder, against, resolution=resolution, channels=channels, root=root, device=device,
                          request=request)
    print_result(result, f"genlab eval-folder {folder} vs {against or reference_stats}")
    console.print(f"{result.summary_line()}; wrote {out}")
