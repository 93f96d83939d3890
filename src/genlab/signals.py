"""A stop request that cannot be lost: Ctrl-C (SIGINT), ``kill`` (SIGTERM) and a closed terminal (SIGHUP).

``kill``, ``timeout``, job schedulers and container stops send SIGTERM; closing a terminal or an SSH session
sends SIGHUP. genlab treats both like Ctrl-C: a training run checkpoints and stops, a sweep passes the request to
its runs and waits for them, any other command stops without writing a half result, and the exit status is the
conventional 128 + the signal's number (130, 143, 129).

Python raises KeyboardInterrupt wherever the main thread happens to be when the signal arrives. When that is a
weakref callback, a ``__del__`` or the garbage collector, Python prints "Exception ignored" and carries on;
when it is inside a library's broad ``except``, the interrupt becomes some other error (a report section that
"could not be drawn", a checkpoint that "is not readable"). Either way the command would finish as if
nothing had happened, or fail with the wrong message.

The CLI installs :func:`handler` (first thing, before torch is imported), which also records which signal came.
The places that commit work ask :func:`check` (an atomic write before its rename, a command before it returns),
and error handlers ask :func:`received` before blaming anything else. Used as a library (no ``genlab`` CLI),
nothing is installed and both are no-ops.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

#: the signals that ask genlab to stop (SIGHUP does not exist on Windows)
STOP_SIGNALS: tuple[int, ...] = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                                      if s is not None)
_NAMES = {getattr(signal, "SIGINT", 2): "Ctrl-C", getattr(signal, "SIGTERM", 15): "SIGTERM",
          getattr(signal, "SIGHUP", 1): "SIGHUP"}

_received: int | None = None
_default_unraisable = sys.unraisablehook


def describe(signum: int | None = None) -> str:
    """Words for a stop signal: ``Ctrl-C``, ``SIGTERM``, ``SIGHUP`` (the one received when not given)."""
    signum = signum if signum is not None else (_received or signal.SIGINT)
    return _NAMES.get(signum, f"signal {signum}")


def exit_code(signum: int | None = None) -> int:
    """The conventional exit status of a command stopped by ``signum``: 128 + its number (Ctrl-C: 130)."""
    return 128 + int(signum if signum is not None else (_received or signal.SIGINT))


def handler(signum: int, frame: FrameType | None) -> None:
    """A stop signal: remember it, then raise KeyboardInterrupt as Python's own SIGINT handler does."""
    global _received
    _received = signum
    raise KeyboardInterrupt


def install_handler(fn: Callable[[int, FrameType | None], Any]) -> dict[int, object]:
    """Make ``fn`` the handler of every stop signal; returns the previous handlers (for :func:`restore`).
    Nothing is installed outside the main thread (Python allows handlers only there)."""
    old: dict[int, object] = {}
    for s in STOP_SIGNALS:
        try:
            old[s] = signal.signal(s, fn)
        except ValueError:  # not the main thread
            break
    return old


def restore(old: dict[int, object]) -> None:
    for s, h in old.items():
        signal.signal(s, h)  # type: ignore[arg-type]


def install() -> None:
    """Make :func:`handler` the handler of SIGINT, SIGTERM and SIGHUP (also when SIGINT arrived ignored, as for
    a job started with ``&`` from a script: Python then installs no KeyboardInterrupt handler at all), and keep
    Python from printing the traceback of a KeyboardInterrupt it swallows ("Exception ignored in ..."): it is
    remembered, and :func:`check` raises it again where it can be handled."""
    install_handler(handler)
    sys.unraisablehook = _unraisable


def _unraisable(info: Any) -> None:  # sys.UnraisableHookArgs
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt) and _received is not None:
        return
    _default_unraisable(info)


def received() -> bool:
    """Whether a stop signal came since :func:`install` (or the last :func:`clear`)."""
    return _received is not None


def which() -> int:
    """The stop signal that came (SIGINT when none did)."""
    return _received if _received is not None else signal.SIGINT


def check() -> None:
    """Raise KeyboardInterrupt if a stop signal came, even if its KeyboardInterrupt was swallowed on the way."""
    if _received is not None:
        raise KeyboardInterrupt


def clear() -> None:
    """Forget a stop signal that has been handled (work may be committed again)."""
    global _received
    _received = None
