"""`genlab export` (a run's generator as safetensors + JSON, loadable without the run folder) and `genlab push`
(the same in the Hugging Face Hub's layout, uploaded to a model repo)."""
from __future__ import annotations

import enum
from pathlib import Path

import typer

from genlab.cli import app, console, ctrl_c_means, output_folder

# the registry's names are the command's choices (shown in --help); genlab.export imports torch, so the names
# are spelled here and checked against the registry by tests/cli/test_export_cli.py
ExportFormatName = enum.Enum("ExportFormatName", {"genlab": "genlab", "hub": "hub"}, type=str)


@app.command("export", help="Write a run's generator (EMA weights when the run has EMA) to DIR: --format genlab: "
                            "generator.safetensors + generator.json; --format hub: the Hugging Face Hub's layout "
                            "(model.safetensors, config.json, a README.md model card with the metrics of eval.json, "
                            "samples.png, recipe.yaml). Load either with genlab.load_generator(DIR).")
def export(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    out: Path = typer.Option(..., "-o", "--out", help="export folder (created; must be empty unless --overwrite)"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="replace an earlier export in that folder (only one genlab exported into)"),
    format: ExportFormatName = typer.Option("genlab", "--format", help="folder layout: genlab | hub"),
    repo_id: str | None = typer.Option(None, "--repo-id", help="hub: the USER/NAME the card's loading example "
                                                               "names (default: USER/REPO)"),
) -> None:
    from genlab.export import EXPORT_FORMATS, check_target, export_generator, load_generator

    output_folder(out)
    layout = EXPORT_FORMATS.get(format.value)
    check_target(out, overwrite)  # before loading the run: a refusal costs nothing
    folder = export_generator(run_dir, out, checkpoint=checkpoint, overwrite=overwrite, format=format.value,
                              repo_id=repo_id)
    info = load_generator(folder, device="cpu").info  # reading it back proves the export is complete
    console.print(f"exported {info.model} generator ({'EMA' if info.ema else 'raw'} weights, step {info.step}) "
                  f"to {folder / layout.weights} and {folder / layout.meta}"
                  + (f" with its model card {folder / 'README.md'}" if format.value == "hub" else ""))


@app.command("push", help="Upload a run's generator to a Hugging Face Hub model repo (created when missing): the "
                          "`genlab export --format hub` folder, model card included. The token comes from HF_TOKEN "
                          "or `hf auth login`; needs pip install 'genlab[hub]'.")
@ctrl_c_means("the upload may be incomplete; push again")
def push(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    repo_id: str = typer.Argument(..., help="the Hub model repo: USER/NAME"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    private: bool | None = typer.Option(None, "--private/--public", help="visibility of a repo it creates "
                                                                         "(default: the Hub's)"),
    revision: str | None = typer.Option(None, "--revision", help="branch to commit to (default: main)"),
    message: str | None = typer.Option(None, "-m", "--message", help="commit message"),
) -> None:
    from genlab.hub import push_to_hub

    url = push_to_hub(run_dir, repo_id, checkpoint=checkpoint, private=private, revision=revision,
                      commit_message=message, log=console.print)
    console.print(f"pushed to {repo_id}: {url}")
