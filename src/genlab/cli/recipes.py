"""`genlab recipes ...`: the recipes that ship with genlab (usable by name from any folder)."""
from __future__ import annotations

import typer
from rich.table import Table

app = typer.Typer(no_args_is_help=True)


def _summary(path) -> tuple[str, str]:
    """(model on dataset, description) of a recipe or sweep file; blanks where the file does not say."""
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(OmegaConf.load(path))
    except Exception:  # a broken file is listed, not fatal: `genlab train NAME` names its problem
        return "", "(unreadable YAML)"
    if not isinstance(data, dict):
        return "", ""
    model = (data.get("model") or {}).get("name", "") if isinstance(data.get("model"), dict) else ""
    dataset = (data.get("data") or {}).get("name", "") if isinstance(data.get("data"), dict) else ""
    what = f"{model} on {dataset}" if model and dataset else str(data.get("base", "") or model or dataset)
    return what, str(data.get("description", "") or "")


@app.command("list")
def list_recipes() -> None:
    """Every recipe (and sweep) that ships with genlab: `genlab train NAME` / `genlab sweep sweeps/NAME`."""
    from genlab.cli import console
    from genlab.recipe_files import ALIASES, SHIPPED, shipped

    aliases: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    table = Table(title=f"genlab recipes ({SHIPPED})")
    for col in ("name", "kind", "model / base", "description"):
        table.add_column(col, overflow="fold")
    for r in shipped():
        what, description = _summary(r.path)
        name = r.name + (f" ({', '.join(aliases[r.name])})" if r.name in aliases else "")
        table.add_row(name, r.kind, what, description)
    console.print(table)


@app.command("show")
def show_recipe(name: str = typer.Argument(..., help="a recipe name (`genlab recipes list`) or a YAML file")) -> None:
    """Print a recipe's YAML (copy it to a file to make your own: `genlab recipes show demo > mine.yaml`)."""
    from genlab.recipe_files import locate

    path = locate(name)
    typer.echo(path.read_text(), nl=False)
