"""The ``genlab`` command: parses, validates, calls one library function per command.

Sub-command groups live in sibling modules and are mounted here. A :class:`GenlabError` is printed as one
line (no traceback) and exits with status 2.
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from genlab import signals
from genlab.errors import ConfigError, GenlabError, Interrupted

F = TypeVar("F", bound=Callable)

# markup off: paths, prompts and library messages are printed as they are (a `[/bold]` in a folder name is text);
# styled output builds rich.text.Text objects instead
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

app = typer.Typer(
    name="genlab",
    help="Train, evaluate and compare image generative models (GANs, VAEs, flow matching and diffusion).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)


#: sub-command groups mounted as `genlab <name> ...` (modules defining their own Typer `app`)
GROUPS = {"datasets": "List and prepare datasets.", "models": "List the registered models.",
          "features": "Feature extractors for the metrics.",
          "recipes": "List and show the recipes that ship with genlab."}
#: modules that add top-level commands to `app`
COMMANDS = ("train", "eval", "analysis", "sweep", "search", "report", "export")


#: --device of every command that runs a network
DEVICE_HELP = "auto (CUDA, then MPS, then the CPU) | cpu | cuda | cuda:N | mps"


def device_option() -> Any:
    """The ``--device`` option: default ``auto``; the command receives the device it resolved to on this machine
    (``cpu``, ``cuda``, ``mps``), checked before any work."""
    return typer.Option("auto", "--device", help=DEVICE_HELP, callback=resolve_device)


def print_markdown(text: str) -> None:
    """A markdown table or text: rendered on a terminal; as it is where the output is a file or a pipe (rendered
    there, a wide table is cut to 80 columns)."""
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)  # a cell like [lr] is text


def executor_names() -> str:
    from genlab.sweeps.runner import EXECUTORS

    return " | ".join(EXECUTORS.names())


def executor_options(what: str) -> dict[str, Any]:
    """The options that place the runs of ``genlab sweep`` and the workers of ``genlab search`` (``what``: "run"
    or "worker"), as Typer defaults: ``executor``, ``address``, ``threads``, ``cpus_per_run``, ``gpus_per_run``."""
    return {
        "executor": typer.Option("local", "--executor", help=f"where {what}s execute: {executor_names()}"),
        "address": typer.Option(None, "--address", help="ray: cluster address (auto, ray://host:10001, host:6379); "
                                                         "default a local Ray"),
        "threads": typer.Option(None, "--threads", help=f"torch threads per {what} (local: default cores // "
                                                        "--workers; ray: default --cpus-per-run; a recipe's "
                                                        "train.threads wins)"),
        "cpus_per_run": typer.Option(1.0, "--cpus-per-run", help=f"ray: CPUs each {what} reserves"),
        "gpus_per_run": typer.Option(0.0, "--gpus-per-run", help=f"ray: GPUs each {what} reserves"),
    }


def build_executor(executor: str, *, workers: int, address: str | None, threads: int | None, cpus_per_run: float,
                   gpus_per_run: float, gpus: str | None = None) -> Any:
    """The executor the options name, every value checked first (one line for a bad one)."""
    positive(workers, "--workers", "runs at a time")
    positive(threads, "--threads", "torch threads per run")
    if not cpus_per_run > 0 or not gpus_per_run >= 0:
        raise ConfigError(f"--cpus-per-run {cpus_per_run} / --gpus-per-run {gpus_per_run} are not allowed: a "
                          "positive number of CPUs and zero or more GPUs per run")
    from genlab.sweeps.runner import make_executor

    return make_executor(executor, workers=workers, address=address, threads=threads, cpus_per_run=cpus_per_run,
                         gpus_per_run=gpus_per_run, gpus=[g.strip() for g in (gpus or "").split(",") if g.strip()])


def resolve_device(name: str) -> str:
    """A device name -> the device it names on this machine (``auto`` picked); ConfigError for one it lacks."""
    from genlab.device import resolve_device as resolve  # torch: only when a command runs

    return str(resolve(name))


def positive(value: int | float | None, option: str, what: str, minimum: int = 1) -> None:
    """ConfigError naming ``option`` unless ``value`` (when given) is at least ``minimum``."""
    if value is not None and value < minimum:
        raise ConfigError(f"{option} {value} is not allowed: {what} (at least {minimum})")


def output_path(path: Path | None, option: str = "-o", suffixes: tuple[str, ...] = (),
                siblings: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, an output path that cannot or must not be written: one of a run's own files
    (records, checkpoints, config, noise: ``genlab.rundir.check_output_file``), a suffix other than
    ``suffixes`` (the kind of file written), a folder, a path under a file, a folder that is not writable.
    ``siblings``: suffixes of the files written next to it (a figure's .svg, its numbers' .json), checked the
    same way. Nothing is created (the write itself makes the missing folders)."""
    if path is None:
        return
    from genlab.rundir import check_output_file

    path = Path(path)
    check_output_file(path, suffixes, option)
    for suffix in siblings:
        check_output_file(path.with_suffix(suffix), (suffix,), option)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{option} {str(path)!r} cannot be written: {str(folder)!r} is a file, not a folder; "
                          "choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {str(path)!r} cannot be written: folder {str(folder)!r} is not writable; "
                          "choose another path or fix its permissions")


def output_folder(path: Path | None, option: str = "-o", names: tuple[str, ...] = ()) -> None:
    """:func:`output_path` for an output folder: it may exist (as a folder); ``names``: the files written into
    it, each checked like an output file."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a file; give a folder")
    for name in names or ("x",):
        output_path(path / name, option, (Path(name).suffix,) if names else ())


@contextmanager
def on_ctrl_c(what: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM, SIGHUP) inside the block: exit 128 + the signal with one line, ``interrupted
    (Ctrl-C); <what>`` (what was saved).

    Also when the KeyboardInterrupt was swallowed on the way (the block then ends normally) or turned into
    another error by a library: :mod:`genlab.signals` remembers which signal came."""
    try:
        yield
        signals.check()
    except KeyboardInterrupt:
        raise _interrupted(what) from None
    except Interrupted:  # the command said itself what it saved (a training run's checkpoint)
        raise
    except Exception:
        if signals.received():  # an error the signal caused, not the user's input
            raise _interrupted(what) from None
        raise


def _interrupted(what: str = "") -> Interrupted:
    """The stop that came (Ctrl-C unless the CLI's handler saw SIGTERM or SIGHUP), with what was saved."""
    signum = signals.which()
    return Interrupted(f"interrupted ({signals.describe(signum)})" + (f"; {what}" if what else ""), signum)


def ctrl_c_means(what: str) -> Callable[[F], F]:
    """A command decorator (below ``@app.command``): :func:`on_ctrl_c` around the whole command."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def command(*args, **kwargs):
            with on_ctrl_c(what):
                return fn(*args, **kwargs)
        return command  # type: ignore[return-value]
    return decorate


def _os_error(e: OSError) -> str:
    """An OSError as one line naming the path the user gave: a failed atomic write names its folder, not the
    temporary file next to the target (``.name.xxxx.tmp``)."""
    name = getattr(e, "filename", None)
    reason = e.strerror or type(e).__name__
    if not name:
        return f"{reason}; check the paths and their permissions"
    p = Path(str(name))
    if p.name.startswith(".") and ".tmp" in p.name:
        return f"cannot write into {str(p.parent)!r}: {reason}; choose another output path or check its permissions"
    return f"{reason}: {str(p)!r}; check the path and its permissions"


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
    # Ctrl-C / kill / a closed terminal must stop any command, even when SIGINT arrived ignored or its
    # KeyboardInterrupt is swallowed on the way (genlab.signals; genlab.__main__ installed it before any import)
    signals.install()
    try:
        rc = app(standalone_mode=False)
    except SystemExit:
        raise
    except BaseException as e:
        if signals.received() and not isinstance(e, Interrupted):  # an error the signal caused (a library
            stopped = _interrupted()                               # turned its KeyboardInterrupt into its own)
            fail(str(stopped), stopped.exit_code)
        _fail(e, click_exception)
    # non-standalone Typer returns the exit code instead of exiting (e.g. 130 after a Ctrl-C it caught); a
    # signal whose KeyboardInterrupt was swallowed on the way still stops the command
    if signals.received() or rc == 130:
        stopped = _interrupted()
        fail(str(stopped), stopped.exit_code)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def _fail(e: Any, click_exception: Any) -> None:
    """One line on stderr and the exit status for what ended a command (called inside its ``except``)."""
    if isinstance(e, GenlabError):  # Interrupted (Ctrl-C, what was saved) exits 130
        fail(str(e), getattr(e, "exit_code", 2))
    if isinstance(e, click_exception):  # usage errors: unknown command or option, bad value
        ctx = getattr(e, "ctx", None)
        command = ctx.command_path if ctx is not None else "genlab"
        message = " ".join(e.format_message().split()).rstrip(".")  # Click lists choices on lines of their own
        if not message:  # `genlab` alone: the help was the answer
            sys.exit(e.exit_code)
        fail(f"{message}; see `{command} --help`", e.exit_code or 2)
    if isinstance(e, (KeyboardInterrupt, typer.Abort)):
        stopped = _interrupted()
        fail(str(stopped), stopped.exit_code)
    if isinstance(e, OSError):  # a folder that cannot be created, a file that cannot be written or read
        fail(_os_error(e))
    if not isinstance(e, Exception) or os.environ.get("GENLAB_TRACEBACK"):
        raise e
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    fail(f"internal error {type(e).__name__}: {first}; this is a bug in genlab: rerun with GENLAB_TRACEBACK=1 "
         "and report the traceback", 1)
