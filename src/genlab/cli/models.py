"""`genlab models list`."""
from __future__ import annotations

import typer
from rich.table import Table

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Every registered model with a one-line description, its conditioning and resolutions."""
    from genlab.cli import console
    from genlab.models import MODELS

    table = Table(title="genlab models")
    for col in ("name", "objective", "conditioning", "resolutions", "description"):
        table.add_column(col)
    for name, spec in MODELS.items():
        table.add_row(name, spec.objective, spec.conditioning.name, ", ".join(map(str, spec.resolutions)),
                      spec.description)
    console.print(table)
