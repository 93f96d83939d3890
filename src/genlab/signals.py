"""A Ctrl-C that cannot be lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. When that is a
weakref callback, a ``__del__`` or the garbage collector, Python prints "Exception ignored" and carries on;
when it is inside a library's broad ``except``, the interrupt becomes some other error (a report section that
"could not be drawn", a checkpoint that "is not readable"). Either way the command would finish as if
nothing had happened, or fail with the wrong message.

The CLI installs :func:`handler`, which also records that SIGINT came. The places that commit work ask
:func:`check` (an atomic write before its rename, a command before it returns), and error handlers ask
:func:`received` before blaming anything else. Used as a library (no ``genlab`` CLI), nothing is installed
and both are no-ops.
"""
from __future__ import annotations

import signal
import sys

_received = False
_default_unraisable = sys.unraisablehook


def handler(signum, frame) -> None:
    """SIGINT: remember it, then raise KeyboardInterrupt as Python's own handler does."""
    global _received
    _received = True
    raise KeyboardInterrupt


def install() -> None:
    """Make :func:`handler` the SIGINT handler (also when SIGINT arrived ignored, as for a job started with
    ``&`` from a script: Python then installs no KeyboardInterrupt handler at all), and keep Python from
    printing the traceback of a KeyboardInterrupt it swallows ("Exception ignored in ..."): it is remembered,
    and :func:`check` raises it again where it can be handled."""
    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = _unraisable


def _unraisable(info) -> None:
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt) and _received:
        return
    _default_unraisable(info)


def received() -> bool:
    """Whether SIGINT came since :func:`install` (or the last :func:`clear`)."""
    return _received


def check() -> None:
    """Raise KeyboardInterrupt if SIGINT came, even if its KeyboardInterrupt was swallowed on the way."""
    if _received:
        raise KeyboardInterrupt


def clear() -> None:
    """Forget a SIGINT that has been handled (work may be committed again)."""
    global _received
    _received = False
