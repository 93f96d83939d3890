"""`python -m genlab` and the `genlab` console script.

The stop signals are handled from the very first line, before anything else is imported: a Ctrl-C, SIGTERM or
SIGHUP in the first seconds (typer, rich and torch loading) ends with one line and 128 + the signal, never with a
traceback from the middle of an import. ``_signal`` is the interpreter's built-in module (it imports nothing);
``genlab.signals`` takes over once it is loaded.
"""
import _signal

_early: list[int] = []


def _stop_early(signum, frame):
    _early.append(signum)
    raise KeyboardInterrupt


for _s in (2, 15, 1):  # SIGINT, SIGTERM, SIGHUP
    try:
        _signal.signal(_s, _stop_early)
    except (OSError, ValueError):  # a signal this platform lacks
        pass


def main() -> None:
    import sys

    try:
        from genlab import signals

        signals.install()
        if _early:
            signals.handler(_early[-1], None)  # came during the imports above: stop now, with its name
        from genlab.cli import main as cli_main
    except KeyboardInterrupt:
        loaded = sys.modules.get("genlab.signals")
        signum = loaded.which() if loaded is not None and loaded.received() else (_early[-1] if _early else 2)
        name = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}.get(signum, f"signal {signum}")
        sys.stderr.write(f"error: interrupted ({name})\n")
        sys.exit(128 + signum)
    cli_main()


if __name__ == "__main__":
    main()
