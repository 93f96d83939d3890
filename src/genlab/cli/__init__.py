"""The ``genlab`` command: parses, validates, calls one library function per command.

Sub-command groups live in sibling modules and are mounted here. A :class:`GenlabError` is printed as one
line (no traceback) and exits with status 2.
"""
from __future__ import annotations

import sys

import typer
from rich.console import Console

from genlab.errors import GenlabError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="genlab",
    help="Train, evaluate and compare image generative models (GANs and VAEs).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: sub-command groups mounted as `genlab <name> ...` (modules defining their own Typer `app`)
GROUPS = {"datasets": "List and prepare datasets.", "models": "List the registered models.",
          "features": "Feature extractors for the metrics."}
#: modules that add top-level commands to `app`
COMMANDS = ("train", "eval", "analysis", "sweep", "report")


def _optional(mod: str):
    try:
        return __import__(f"genlab.cli.{mod}", fromlist=["_"])
    except ModuleNotFoundError as e:
        if e.name != f"genlab.cli.{mod}":
            raise
        return None


def _mount() -> None:
    for mod in COMMANDS:
        _optional(mod)
    for name, help_text in GROUPS.items():
        module = _optional(name)
        if module is not None and hasattr(module, "app"):
            app.add_typer(module.app, name=name, help=help_text)


_mount()


def main() -> None:
    try:
        app(standalone_mode=False)
    except GenlabError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise
