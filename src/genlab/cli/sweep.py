"""`genlab sweep`: a grid x seeds of runs, N at a time (local processes or Ray tasks), then the results table."""
from __future__ import annotations

from pathlib import Path

import typer

from genlab.cli import app, console, output_folder, positive
from genlab.errors import ConfigError


def _executors() -> str:
    from genlab.sweeps.runner import EXECUTORS

    return " | ".join(EXECUTORS.names())


@app.command(help="Run a sweep file (base recipe, fixed overrides, grid, seeds): one run folder per cell x seed "
                  "under --out, N at a time; finished runs are skipped and unfinished ones resumed. Then writes "
                  f"results.csv/.md and a heatmap. Executors: {_executors()}.")
def sweep(
    sweep_file: Path | None = typer.Argument(None, help="the sweep YAML (not needed with --table-only)"),
    out: Path | None = typer.Option(None, "--out", help="sweep folder (default sweeps/<sweep file name>)"),
    workers: int = typer.Option(1, "--workers", "-j", help="runs at a time (local: processes on this machine)"),
    executor: str = typer.Option("local", "--executor", help=f"where runs execute: {_executors()}"),
    address: str | None = typer.Option(None, "--address", help="ray: cluster address (auto, ray://host:10001, "
                                                                  "host:6379); default a local Ray"),
    threads: int | None = typer.Option(None, "--threads", help="torch threads per run (default cores // workers; "
                                                                  "ray: CPUs per run)"),
    gpus: str | None = typer.Option(None, "--gpus", help="local: comma-separated GPU ids handed out round-robin, "
                                                            "one per running process, e.g. 0,1"),
    cpus_per_run: float = typer.Option(1.0, "--cpus-per-run", help="ray: CPUs each run reserves"),
    gpus_per_run: float = typer.Option(0.0, "--gpus-per-run", help="ray: GPUs each run reserves"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the plan; run nothing"),
    table_only: bool = typer.Option(False, "--table-only", help="only (re)write the results of --out"),
) -> None:
    from rich.markdown import Markdown

    from genlab.sweeps.grid import load_sweep
    from genlab.sweeps.results import load_table, to_markdown, write_results
    from genlab.sweeps.runner import check_outcome, make_executor, run_sweep

    positive(workers, "--workers", "runs at a time")
    positive(threads, "--threads", "torch threads per run")
    if not cpus_per_run > 0 or not gpus_per_run >= 0:
        raise ConfigError(f"--cpus-per-run {cpus_per_run} / --gpus-per-run {gpus_per_run} are not allowed: a "
                          "positive number of CPUs and zero or more GPUs per run")
    output_folder(out, "--out", names=("results.csv", "results.md", "runs.csv", "results_heatmap.png",
                                       "results_heatmap.svg"))
    outcome = None
    if not table_only:
        if sweep_file is None:
            raise ConfigError("give a sweep file, e.g. `genlab sweep sweeps/latent_hidden.yaml --workers 2`")
        spec = load_sweep(sweep_file)
        out = out or Path("sweeps") / spec.name
        ex = make_executor(executor, workers=workers, address=address, threads=threads,
                           gpus=[g.strip() for g in (gpus or "").split(",") if g.strip()], cpus_per_run=cpus_per_run,
                           gpus_per_run=gpus_per_run)
        outcome = run_sweep(spec, out, ex, dry_run=dry_run, log=console.print)
        if dry_run:
            return
    elif out is None:
        if sweep_file is not None and sweep_file.is_dir():
            out = sweep_file
        else:
            raise ConfigError("--table-only needs the sweep folder: --out sweeps/NAME")
    paths = write_results(out)
    console.print(Markdown(to_markdown(load_table(out))))
    for p in paths.values():
        console.print(f"wrote {p}")
    console.print(f"report: genlab report {out} -o {out}/report.html")
    if outcome is not None:
        check_outcome(outcome)
