"""Progress of long metric work (training the classifier extractor, sampling + features, reference features).

The metrics package never draws anything: it calls ``report(task, done, total, note)`` and whoever started
the work decides what that shows. By default nothing is shown (the training loop's in-training evaluation
logs lines instead); the CLI fills it with a Rich progress bar for the duration of one command::

    with progress_to(my_callback):   # my_callback(task, done, total, note)
        evaluate(...)

``task`` names one bar (e.g. ``"sampling + features"``); ``done`` / ``total`` count its units (images, steps);
``note`` is a short status such as ``"epoch 2/3 loss 0.312 train acc 88.1%"``. The callback is held in a
``ContextVar``: it is scoped to the ``with`` block (and to its thread), never process-wide state.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol


class ProgressFn(Protocol):
    def __call__(self, task: str, done: int, total: int, note: str = "") -> None: ...


def no_progress(task: str, done: int, total: int, note: str = "") -> None:
    """The default: show nothing."""


_current: ContextVar[ProgressFn] = ContextVar("genlab_metrics_progress", default=no_progress)


@contextlib.contextmanager
def progress_to(fn: ProgressFn) -> Iterator[None]:
    """Send the progress of metric work done inside the block to ``fn``."""
    token = _current.set(fn)
    try:
        yield
    finally:
        _current.reset(token)


def active() -> bool:
    """Whether a ``progress_to`` block is showing the progress (a download then reports into it rather than
    drawing a bar of its own: two live Rich displays cannot share a terminal)."""
    return _current.get() is not no_progress


def report(task: str, done: int, total: int, note: str = "") -> None:
    """``done`` of ``total`` units of ``task`` are finished (called by the metrics package)."""
    _current.get()(task, done, total, note)
