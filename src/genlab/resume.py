"""The resume policy: which config keys a resume may change, and the config a resume trains with.

A resume continues exactly where the run stopped, so only keys that do not alter what the model has learned
(length of training, device and speed settings, logging, evaluation, where the data lives) may change. The
request is checked twice: against ``config.yaml`` before anything is written (:func:`resume_config`), and
against the config stored in the checkpoint the resume loads (:func:`check_against_checkpoint`), so an edited
``config.yaml`` cannot slip a change past the refusal. A changed ``data.root`` is accepted only when it holds
the same training images (``genlab.data.data_identity``, recorded in every checkpoint).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genlab.config import Config, diff
from genlab.errors import ConfigError
from genlab.recipe import from_dict, load_config
from genlab.rundir import RunDir

#: keys a resume may change (they do not alter what the model has learned so far)
RESUMABLE_KEYS = ("train.epochs", "train.max_steps", "train.minutes", "train.device", "train.precision",
                  "train.compile", "train.channels_last", "train.threads", "log.", "eval.", "data.root",
                  "data.download", "data.verify", "name", "description",
                  # how a flow or diffusion model draws its grids and evaluations, not what it learns
                  "objective.solver", "objective.steps", "objective.guidance")


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


def _describe(identity: dict) -> str:
    shape = "x".join(str(d) for d in identity.get("shape", ()))
    return f"{shape} images, sha256 {str(identity.get('sha256', '?'))[:12]}"


def check_against_checkpoint(ckpt_config: dict, requested: Config, *, source: str = "the checkpoint",
                             saved_data: dict | None = None, data: dict | None = None,
                             log: Callable[[str], None] = print) -> None:
    """Refuse a resume whose ``requested`` config differs from the checkpoint's ``config`` entry in a key
    outside ``RESUMABLE_KEYS`` (``config.yaml`` may have been edited by hand), or whose training data differs
    from the data the checkpoint was trained on.

    ``saved_data``: the checkpoint's data identity (``extra["data_identity"]``; None in checkpoints written
    before genlab recorded it: accepted, said once through ``log``); ``data``: the identity of the data this
    resume loaded (``genlab.data.data_identity``).
    """
    saved = from_dict(ckpt_config)
    bad = check_resume(saved, requested)
    if bad:
        changes = ", ".join(f"{k} ({_value(saved, k)!r} -> {_value(requested, k)!r})" for k in bad)
        raise ConfigError(f"cannot resume from {source}: the requested config differs from the one stored in "
                          f"the checkpoint in {changes} (was config.yaml edited?); put those keys back, or start "
                          "a new run (another --run-dir) for a different config")
    if data is None:
        return
    if saved_data is None:
        log(f"note: {source} does not record which training images it was trained on (written by an older "
            "genlab); the data is not checked against it")
        return
    if {k: saved_data.get(k) for k in data} != data:
        root = requested.data.root or "(the default lookup)"
        raise ConfigError(f"cannot resume from {source}: data.root {root} holds different images than the run "
                          f"was trained on ({_describe(data)} now, {_describe(saved_data)} in the checkpoint); "
                          f"point data.root at the run's data (it was {saved.data.root or 'the default lookup'}), "
                          "or start a new run")


def _value(cfg: Config, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part, None) if not isinstance(node, dict) else node.get(part)
    return node
