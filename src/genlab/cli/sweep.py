"""`genlab sweep`: a grid x seeds of runs, N at a time (local processes or Ray tasks), then the results table."""
from __future__ import annotations

from pathlib import Path

import typer

from genlab.cli import app, build_executor, console, executor_names, executor_options, output_folder, print_markdown
from genlab.errors import ConfigError

_EX = executor_options("run")


@app.command(help="Run a sweep file (base recipe, fixed overrides, grid, seeds): one run folder per cell x seed "
                  "under --out, N at a time; finished runs are skipped and unfinished ones resumed. Then writes "
                  f"results.csv/.md and a heatmap. Executors: {executor_names()}.")
def sweep(
    sweep_file: Path | None = typer.Argument(None, help="the sweep YAML (not needed with --table-only)"),
    out: Path | None = typer.Option(None, "--out", help="sweep folder (default sweeps/<sweep file name>)"),
    workers: int = typer.Option(1, "--workers", "-j", help="runs at a time (local: processes on this machine)"),
    executor: str = _EX["executor"],
    address: str | None = _EX["address"],
    threads: int | None = _EX["threads"],
    gpus: str | None = typer.Option(None, "--gpus", help="local: comma-separated GPU ids handed out round-robin, "
                                                            "one per running process, e.g. 0,1"),
    cpus_per_run: float = _EX["cpus_per_run"],
    gpus_per_run: float = _EX["gpus_per_run"],
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the plan; run nothing"),
    table_only: bool = typer.Option(False, "--table-only", help="only (re)write the results of --out"),
) -> None:
    from genlab.sweeps.grid import load_sweep
    from genlab.sweeps.results import load_table, to_markdown, write_results
    from genlab.sweeps.runner import check_outcome, run_sweep

    ex = build_executor(executor, workers=workers, address=address, threads=threads, cpus_per_run=cpus_per_run,
                        gpus_per_run=gpus_per_run, gpus=gpus)
    output_folder(out, "--out", names=("results.csv", "results.md", "runs.csv", "results_heatmap.png",
                                       "results_heatmap.svg"))
    outcome = None
    if not table_only:
        if sweep_file is None:
            raise ConfigError("give a sweep file, e.g. `genlab sweep sweeps/latent_hidden.yaml --workers 2`")
        spec = load_sweep(sweep_file)
        out = out or Path("sweeps") / spec.name
        outcome = run_sweep(spec, out, ex, dry_run=dry_run, log=console.print)
        if dry_run:
            return
    elif out is None:
        if sweep_file is not None and sweep_file.is_dir():
            out = sweep_file
        else:
            raise ConfigError("--table-only needs the sweep folder: --out sweeps/NAME")
    paths = write_results(out)
    print_markdown(to_markdown(load_table(out)))
    for p in paths.values():
        console.print(f"wrote {p}")
    console.print(f"report: genlab report {out} -o {out}/report.html")
    if outcome is not None:
        check_outcome(outcome)
