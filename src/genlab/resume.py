"""The resume policy: which config keys a resume may change, and the config a resume trains with.

A resume continues exactly where the run stopped, so only keys that do not alter what the model has learned
(length of training, device and speed settings, logging, evaluation, where the data lives) may change.
"""
from __future__ import annotations

from genlab.config import Config, diff
from genlab.errors import ConfigError
from genlab.recipe import from_dict, load_config
from genlab.rundir import RunDir

#: keys a resume may change (they do not alter what the model has learned so far)
RESUMABLE_KEYS = ("train.epochs", "train.max_steps", "train.device", "train.precision", "train.compile",
                  "train.channels_last", "train.threads", "log.", "eval.", "data.root", "data.download",
                  "name", "description")


def check_resume(saved: Config, requested: Config) -> list[str]:
    """Keys that differ and may not change on resume (empty = fine)."""
    return [k for k in diff(saved, requested) if not any(k == p or (p.endswith(".") and k.startswith(p))
                                                          for p in RESUMABLE_KEYS)]


def resume_config(run: RunDir, overrides: list[str] | tuple[str, ...] = (), recipe: str | None = None) -> Config:
    """The run's saved config plus overrides; refuses changes that would make the resume inexact."""
    saved_dict = run.read_config()
    saved = from_dict(saved_dict)
    requested = load_config(recipe, overrides) if recipe else load_config(None, overrides, base=saved_dict)
    bad = check_resume(saved, requested)
    if bad:
        raise ConfigError(f"cannot resume {run.path}: the config changed in {', '.join(bad)}; "
                          "start a new run (another --run-dir) for a different config")
    return requested
