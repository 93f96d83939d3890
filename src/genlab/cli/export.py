"""`genlab export`: a run's generator as safetensors + JSON, loadable without the run folder."""
from __future__ import annotations

from pathlib import Path

import typer

from genlab.cli import app, console, output_folder


@app.command("export", help="Write a run's generator (EMA weights when the run has EMA) to DIR/generator.safetensors "
                            "and DIR/generator.json; load it with genlab.load_generator(DIR).")
def export(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    out: Path = typer.Option(..., "-o", "--out", help="export folder (created; must be empty unless --overwrite)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="replace an earlier export in that folder (only one genlab exported into)"),
) -> None:
    from genlab.export import META_FILE, WEIGHTS_FILE, check_target, export_generator, load_generator

    output_folder(out)
    check_target(out, overwrite)  # before loading the run: a refusal costs nothing
    folder = export_generator(run_dir, out, checkpoint=checkpoint, overwrite=overwrite)
    info = load_generator(folder).info  # reading it back proves the export is complete
    console.print(f"exported {info.model} generator ({'EMA' if info.ema else 'raw'} weights, step {info.step}) "
                  f"to {folder / WEIGHTS_FILE} and {folder / META_FILE}")
