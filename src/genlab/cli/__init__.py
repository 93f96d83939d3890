"""The ``genlab`` command: parses, validates, calls one library function per command.

Sub-command groups live in sibling modules and are mounted here. A :class:`GenlabError` is printed as one
line (no traceback) and exits with status 2.
"""
from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.text import Text

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
COMMANDS = ("train", "eval", "analysis", "sweep", "report", "export")


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


def _click_exception() -> type[BaseException]:
    """Click's base exception as this Typer uses it: Typer >= 0.29 vendors Click (``typer._click``) and no longer
    installs it, older Typer re-exports the real one. ``typer.BadParameter`` derives from it in both."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` as one line (no Rich markup read from the message) and exit with ``code``."""
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """The console script. Every failure is one line on stderr: exit 2 for a problem the user can fix (a
    GenlabError, a usage error, a file that cannot be written), 130 for Ctrl-C, 1 for a bug in genlab (its
    traceback is shown only with GENLAB_TRACEBACK=1)."""
    click_exception = _click_exception()
    try:
        rc = app(standalone_mode=False)
    except GenlabError as e:
        fail(str(e))
    except click_exception as e:  # usage errors: unknown command or option, bad value
        ctx = getattr(e, "ctx", None)
        command = ctx.command_path if ctx is not None else "genlab"
        message = " ".join(e.format_message().split()).rstrip(".")  # Click lists choices on lines of their own
        if not message:  # `genlab` alone: the help was the answer
            sys.exit(e.exit_code)
        fail(f"{message}; see `{command} --help`", e.exit_code or 2)
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", 130)
    except OSError as e:  # a folder that cannot be created, a file that cannot be written or read
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        fail(f"{e.strerror or type(e).__name__}{where}; check the path and its permissions")
    except Exception as e:
        if os.environ.get("GENLAB_TRACEBACK"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(f"internal error {type(e).__name__}: {first}; this is a bug in genlab: rerun with GENLAB_TRACEBACK=1 "
             "and report the traceback", 1)
    # non-standalone Typer returns the exit code instead of exiting (e.g. 130 after a Ctrl-C it caught)
    if isinstance(rc, int) and rc:
        if rc == 130:
            fail("interrupted", 130)
        sys.exit(rc)
