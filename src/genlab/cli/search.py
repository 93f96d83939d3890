"""`genlab search`: a study (Optuna) over a search space: trials that are genlab runs, pruned from their
in-training evaluations, on one machine or many sharing one study database."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from genlab.cli import app, build_executor, console, executor_options, output_folder, positive, print_markdown
from genlab.errors import ConfigError

_EX = executor_options("worker")


def _choices() -> str:
    from genlab.sweeps.study import PRUNERS, SAMPLERS

    return f"samplers: {', '.join(SAMPLERS.names())}; pruners: {', '.join(PRUNERS.names())}"


@app.command(help="Run a search file (a sweep file's base, overrides and seeds plus a space, an objective, a budget "
                  "per trial and a number of trials) as an Optuna study: trials are run folders under --out, bad ones "
                  "pruned at their in-training evaluations. Run the same command on several machines with one "
                  "--storage to share the study; rerun it to continue. Writes trials.csv/.md and best.yaml. "
                  f"{_choices()}.")
def search(
    search_file: Path | None = typer.Argument(None, help="the search YAML (not needed with --table-only)"),
    out: Path | None = typer.Option(None, "--out", help="search folder (default searches/<search name>)"),
    storage: str | None = typer.Option(None, "--storage", help="the study database: any SQLAlchemy URL Optuna "
                                                                 "supports, e.g. postgresql://USER@HOST/DB (default: "
                                                                 "a SQLite file OUT/study.db)"),
    workers: int = typer.Option(1, "--workers", "-j", help="worker processes on this machine (ray: tasks), each "
                                                           "training one trial at a time"),
    executor: str = _EX["executor"],
    address: str | None = _EX["address"],
    threads: int | None = _EX["threads"],
    cpus_per_run: float = _EX["cpus_per_run"],
    gpus_per_run: float = _EX["gpus_per_run"],
    dry_run: bool = typer.Option(False, "--dry-run", help="check the search file and print the plan; train nothing"),
    table_only: bool = typer.Option(False, "--table-only", help="only (re)write trials.csv/.md and best.yaml of --out"),
) -> None:
    positive(workers, "--workers", "worker processes")
    # one local worker is this process itself; more, or Ray, is an executor
    ex = build_executor(executor, workers=workers, address=address, threads=threads, cpus_per_run=cpus_per_run,
                        gpus_per_run=gpus_per_run) if workers > 1 or executor != "local" else None
    positive(threads, "--threads", "torch threads per worker")
    output_folder(out, "--out")
    from genlab.sweeps.search_file import load_search

    if search_file is None:
        if not table_only or out is None:
            raise ConfigError("give a search file, e.g. `genlab search configs/searches/demo_lr_betas.yaml`")
        search_file = out / "search.yaml"
        if not search_file.is_file():
            raise ConfigError(f"{out} is not a search folder (no search.yaml); give the search file too")
    spec = load_search(search_file)
    out = out or Path("searches") / spec.name
    if dry_run:
        _plan(spec, out, storage)
        return
    from genlab.sweeps.search import run_search

    if ex is None and threads:  # this process is the worker: what train.threads=auto reads (a recipe's own wins)
        import os

        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    if table_only:
        summary = _table(spec, out, storage)
    else:
        with _progress() as progress:
            summary = run_search(spec, out, storage, workers=workers, executor=ex, log=progress.console.print,
                                 progress=progress.show)
    print_markdown(summary.files["md"].read_text())
    for p in summary.files.values():
        console.print(f"wrote {p}")
    console.print(summary.line())
    console.print(f"report: genlab report {out}; dashboard: optuna-dashboard {_dashboard_url(summary.storage, out)}")


def _dashboard_url(storage: str, out: Path) -> str:
    return storage if not storage.startswith("sqlite:///") else f"sqlite:///{(out / 'study.db').absolute()}"


def _plan(spec, out: Path, storage: str | None) -> None:
    from genlab.sweeps.study import default_storage, shown_url

    console.print(f"search {spec.name}: {spec.objective.direction} {spec.objective.key} (eval.every="
                  f"{spec.objective.every}), {spec.trials} trials x {len(spec.seeds)} seed(s), sampler "
                  f"{spec.sampler[0]}, pruner {spec.pruner[0]}; study in "
                  f"{shown_url(storage or default_storage(out))}; run folders under {out}/trials")
    for p in spec.space.params:
        console.print(f"  {p.describe()}")
    console.print(f"every trial: genlab train {spec.sweep.base} {' '.join(spec.fixed_overrides())} <its values> "
                  "train.seed=<seed>")


def _table(spec, out: Path, storage: str | None):
    from genlab.sweeps.search import open_study, summarize
    from genlab.sweeps.study import default_storage

    if not out.is_dir():
        raise ConfigError(f"--table-only: {out} does not exist; run the search first")
    url = storage or default_storage(out)
    return summarize(spec, open_study(spec, url), out.absolute(), url, 0.0)


class _Bar:
    """A Rich bar over the study's finished trials; log lines print above it."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from genlab.progress import Progress

        self.bar = Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[note]}"), console=console,
                            transient=False, refresh_per_second=2)
        self.console = self.bar.console
        self.task: Any = None  # a TaskID once the first report arrives

    def show(self, done: int, total: int, note: str) -> None:
        if self.task is None:  # started on the first report: a search refused up front prints no empty bar
            self.bar.start()
            self.task = self.bar.add_task("trials", total=total, completed=done, note=note)
        self.bar.update(self.task, total=total, completed=done, note=note)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.bar.stop()


def _progress() -> _Bar:
    return _Bar()
