"""`genlab report`: one self-contained HTML page for runs, comparisons of runs, and sweeps."""
from __future__ import annotations

from pathlib import Path

import typer

from genlab.cli import app, console, ctrl_c_means, device_option, output_path


@app.command(help="Write one self-contained HTML report (images embedded, no network) for a run, several runs "
                  "(with a comparison) or a sweep folder.")
@ctrl_c_means("the report was not written (it is written in one go at the end)")
def report(
    paths: list[Path] = typer.Argument(..., help="run folders and/or sweep folders"),
    out: Path | None = typer.Option(None, "-o", "--out", help="HTML file (default: FOLDER/report.html for one "
                                                                 "folder, else report.html)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="which checkpoint draws samples: last | best | PATH"),
    seed: int = typer.Option(0, "--seed", help="latent seed of the samples and interpolations"),
    title: str | None = typer.Option(None, "--title", help="page title"),
    device: str = device_option(),
) -> None:
    from genlab.reporting.html import build_report

    target = out or (paths[0] / "report.html" if len(paths) == 1 else Path("report.html"))
    output_path(target, suffixes=(".html",))
    path = build_report(paths, target, checkpoint=checkpoint, device=device, seed=seed, title=title,
                        log=lambda m: console.print(m, style="dim"))
    console.print(f"report written: {path} ({path.stat().st_size / 1024:.0f} KiB)")
