"""The one interface every experiment tracker implements, and the registry of them (``log.trackers``).

A tracker is told, in this order: :meth:`Tracker.start` (the resolved config, where the fit starts, and the ids
it kept in the run folder at its first start, so a resume continues the same tracker run), then for the fit's
events :meth:`~Tracker.log_metrics` (the numbers of every metrics.jsonl record), :meth:`~Tracker.log_evaluation`
(an evaluation record with its protocol), :meth:`~Tracker.log_image` (a sample grid), and at the end
:meth:`~Tracker.log_artifacts` (the final checkpoint's export, eval.json) and :meth:`~Tracker.finish` (how the
run ended). ``genlab.trackers.callback.Trackers`` calls them and turns a failure into one warning.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from genlab.config import Config
from genlab.errors import ConfigError
from genlab.registry import Registry
from genlab.rundir import RunDir


@dataclass(frozen=True)
class TrackerStart:
    """What a tracker gets when a fit starts."""

    run: RunDir
    cfg: Config
    config: dict  # the resolved config as a nested dict (what config.yaml holds)
    step: int  # the step the fit starts from: 0 for a new run, the checkpoint's step for a resume
    saved: dict | None  # what this tracker's start returned for this run folder before (None: never started)
    log: Callable[[str], None]


class Tracker:
    """Base class of experiment trackers; every event but :meth:`start` is a no-op here.

    ``package`` is the module :meth:`require` imports (None: always installed), ``extra`` the pip extra that
    installs it (``pip install 'genlab[EXTRA]'``); ``takes_artifacts``: whether :meth:`log_artifacts` does
    something, so the export is made only when a tracker keeps it.
    """

    name: ClassVar[str] = ""
    package: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    takes_artifacts: ClassVar[bool] = True

    @classmethod
    def require(cls) -> None:
        """Import the tracker's package now (ConfigError naming the extra to install when it is missing)."""
        if cls.package is None:
            return
        install = f"pip install 'genlab[{cls.extra}]'"
        try:
            importlib.import_module(cls.package)
        except ImportError as e:
            if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == cls.package:
                raise ConfigError(f"log.trackers lists {cls.name}, but the {cls.package} package is not installed; "
                                  f"install it with: {install}") from None
            # the package is there but does not import (one of its own dependencies is missing or broken)
            what = " ".join(str(e).split())
            raise ConfigError(f"log.trackers lists {cls.name}, but the {cls.package} package does not import "
                              f"({type(e).__name__}: {what}); reinstall it with: {install}") from None

    def quiet(self) -> AbstractContextManager:
        """Entered around every call of this tracker: keeps the library's own error output (tracebacks it logs
        before raising) off the console, since the failure is reported in one line."""
        return nullcontext()

    def start(self, s: TrackerStart) -> dict | None:
        """Open (or, with ``s.saved``, continue) the tracker's run; returns the ids to keep in the run folder
        (``RunDir.write_tracker_ids``). Ids that differ from ``s.saved`` mean a new tracker run was opened: the
        caller then sends it the records metrics.jsonl already holds."""
        raise NotImplementedError

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """The finite numbers of one metrics.jsonl record (``step`` and ``epoch`` left out)."""

    def log_evaluation(self, step: int, record: dict) -> None:
        """An evaluation record as metrics.jsonl holds it, its ``protocol`` included (its numbers also go
        through :meth:`log_metrics`)."""

    def log_image(self, step: int, tag: str, grid: np.ndarray) -> None:
        """A sample grid (HWC uint8; ``tag`` samples, or an objective's own such as recon)."""

    def log_artifacts(self, files: dict[str, Path]) -> None:
        """Files and folders to keep with the run, by name (``export``: the final checkpoint's
        ``genlab.export`` folder; ``eval.json``)."""

    def finish(self, step: int, status: str) -> None:
        """How the fit ended, at ``step``: finished | stopped | interrupted | diverged | failed."""


#: the trackers ``log.trackers`` names; a tracker module registers its class here
TRACKERS: Registry[type[Tracker]] = Registry("tracker")


def register_tracker(cls: type[Tracker]) -> type[Tracker]:
    """Class decorator: ``TRACKERS[cls.name] = cls``."""
    return TRACKERS.add(cls.name, cls)


def flat_params(config: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config -> dotted keys (``train.g_opt.lr``) and leaf values (lists kept as lists)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict) and v:
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
