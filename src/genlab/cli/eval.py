"""`genlab eval` and `genlab eval-folder`: metrics with the field's protocol, printed and written as JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from genlab.cli import app, console, on_ctrl_c, output_path, positive
from genlab.cli.progress import metric_progress
from genlab.errors import ConfigError

METRICS_HELP = "comma-separated: fid, kid, is, pr, coverage"
FEATURES_HELP = "auto (inception if its weights are on disk, else classifier) | inception | classifier"


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
    metrics: str = typer.Option("fid,kid,is,pr,coverage", "--metrics", help=METRICS_HELP),
    features: str = typer.Option("auto", "--features", help=FEATURES_HELP),
    num_samples: int = typer.Option(10_000, "--num-samples", help="generated images"),
    seed: int = typer.Option(0, "--seed"),
    split: str = typer.Option("test", "--split", help="reference split of the run's dataset"),
    batch_size: int = typer.Option(250, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights", help="pt_inception-2015-12-05 file"),
    out: Path | None = typer.Option(None, "--out", help="JSON path (default: RUN/eval.json)"),
    device: str = typer.Option("cpu", "--device"),
    no_verify: bool = typer.Option(False, "--no-verify", help="use reference files whose md5 is not the published"),
) -> None:
    from genlab.api import load_run
    from genlab.evaluation import summary_line
    from genlab.training import distributed

    positive(num_samples, "--num-samples", "the number of generated images")
    positive(batch_size, "--batch-size", "images per batch")
    output_path(out, "--out")
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            distributed.setup(device) as ctx:  # under torchrun: sampling and features sharded over the ranks
        run = load_run(run_dir, checkpoint, str(ctx.device(device)))
        path = out if out is not None else run.loaded.run.eval_json
        output_path(path, "--out")
        if ctx.is_main:
            console.print(f"evaluating {metrics} of {run.checkpoint.name} (step {run.step}) on {num_samples} "
                          f"generated images vs the {split} split")
        with metric_progress(console, ctx.is_main):
            result = run.evaluate(metrics, num_samples, features=features, seed=seed, split=split,
                                  batch_size=batch_size, inception_weights=inception_weights, out=path,
                                  verify=False if no_verify else None)
    if ctx.is_main:
        print_result(result, f"genlab eval {run_dir} ({result['protocol']['checkpoint']})")
        console.print(f"{summary_line(result)}; wrote {path}")


@app.command("eval-folder", help="Metrics of a folder of images against a dataset split or another folder.")
def eval_folder(
    folder: Path = typer.Argument(..., help="a folder of generated images"),
    against: str = typer.Option(..., "--against", help="DATASET[:SPLIT] (e.g. fashion-mnist:test) or a folder"),
    out: Path = typer.Option(Path("result.json"), "--out", help="JSON path"),
    metrics: str = typer.Option("fid,kid,is,pr,coverage", "--metrics", help=METRICS_HELP),
    features: str = typer.Option("auto", "--features", help=FEATURES_HELP),
    resolution: int | None = typer.Option(None, "--resolution", help="decode both sides at this size first "
                                          "(default: folders as they are, a dataset at its native size)"),
    channels: int | None = typer.Option(None, "--channels", help="1 or 3 (with --resolution)"),
    root: str | None = typer.Option(None, "--root", help="folder with the reference dataset's files"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(250, "--batch-size"),
    inception_weights: str | None = typer.Option(None, "--inception-weights"),
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
    with on_ctrl_c("nothing was written (the result is written only when every metric is done)"), \
            metric_progress(console):
        result = evaluate(folder, against, metrics=metrics, features=features, resolution=resolution,
                          channels=channels, root=root, seed=seed, batch_size=batch_size,
                          inception_weights=inception_weights, device=device, out=out, verify=not no_verify)
    print_result(result, f"genlab eval-folder {folder} vs {against}")
    console.print(f"{summary_line(result)}; wrote {out}")
