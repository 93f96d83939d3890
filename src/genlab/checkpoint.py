"""Checkpoint files that allow a true resume (their contents: ``state.TrainState.state_dict``), RNG states.

Written to a temporary file then renamed; loaded with ``torch.load(weights_only=True)``. A file that cannot be
loaded is told apart by what is wrong with it, each with its own fix:

- :class:`CorruptCheckpoint`: truncated, zeroed, not a zip/pickle at all, contents that no longer match the
  checksum they were written with (a flipped bit: ``torch.load`` does not check the zip's CRC), or networks
  holding NaN or infinite weights; names the older checkpoint to use (``--resume`` falls back to it by itself,
  with a warning: :func:`resume_checkpoint`);
- :class:`NotACheckpoint`: loads, but is not a genlab checkpoint (``noise.pt``, a bare state dict, a pickled
  model).

A checkpoint whose networks do not fit the config is reported where the networks are built (state.py).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genlab.deletion import remove_owned_files
from genlab.errors import RunError
from genlab.io import atomic_torch_save, content_digest
from genlab.rundir import RunDir

#: what every genlab checkpoint holds (state.TrainState.state_dict; the same in genlab 0.1.0)
REQUIRED_KEYS = ("nets", "optimizers", "step", "epoch", "config")
#: suffix given to a corrupt checkpoint that a resume set aside (never deleted)
CORRUPT_SUFFIX = ".corrupt"
#: the checkpoint entry holding ``io.content_digest`` of everything else in it (checkpoints before it have none)
DIGEST_KEY = "digest"


class CorruptCheckpoint(RunError):
    """A checkpoint file that is damaged (truncated, zeroed, not a zip/pickle)."""

    def __init__(self, message: str, path: Path, cause: str):
        super().__init__(message)
        self.path, self.cause = path, cause


class NotACheckpoint(RunError):
    """A readable file that is not a genlab checkpoint."""


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore ``rng_state()``'s output (load checkpoints with ``map_location="cpu"``: the setters take CPU byte
    tensors only). CUDA states are restored for the GPUs this process sees; a checkpoint written where more were
    visible keeps its extra states unused (torch.cuda.set_rng_state_all would fail on the first missing one)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def save_checkpoint(path: Path, state_dict: dict) -> Path:
    """Write a checkpoint dict (``TrainState.state_dict()``) atomically; a failed write (full disk, file-size
    limit, permissions) is a RunError naming the file, the cause and the checkpoint that is still good."""
    try:
        return atomic_torch_save({**state_dict, DIGEST_KEY: content_digest(state_dict)}, path)
    except OSError as e:
        path = Path(path)
        older = [p for p in _step_files(path.parent) if p != path]
        keep = (f"the last good checkpoint {older[-1]} is intact: continue from it with `genlab train --resume "
                f"{path.parent.parent}`" if older else "no earlier checkpoint exists")
        hint = {errno.ENOSPC: "the disk is full: free space", errno.EFBIG: "a file-size limit was hit (ulimit -f)",
                errno.EDQUOT: "the disk quota is exhausted"}.get(e.errno or 0, "check the folder")
        code = errno.errorcode.get(e.errno or 0, "?")
        raise RunError(f"could not write checkpoint {path}: {e.strerror or type(e).__name__} [{code}]; {hint}; "
                       f"{keep}") from None


def _step_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("step_*.pt")) if folder.is_dir() else []


def _first_line(e: BaseException) -> str:
    """``Type: first sentence`` of an exception (torch's load errors run to several paragraphs)."""
    text = str(e).strip()
    if "WeightsUnpickler error:" in text:  # what the unpickler choked on, not torch's advice around it
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    first = text.splitlines()[0].split(". ")[0].rstrip(".")[:120] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def older_checkpoint(path: Path) -> Path | None:
    """The newest step checkpoint next to ``path`` that is older than it (any step checkpoint for best.pt)."""
    path = Path(path)
    files = [p for p in _step_files(path.parent) if p != path]
    if path.name.startswith("step_"):
        files = [p for p in files if p.name < path.name]
    return files[-1] if files else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """A genlab checkpoint dict; :class:`CorruptCheckpoint` / :class:`NotACheckpoint` say what is wrong.

    ``map_location`` must be a device this machine has (``genlab.device.resolve_device`` checks that first)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise RunError(f"checkpoint {str(path)!r} does not exist; use --checkpoint last, best or a path to a "
                       ".pt file") from None
    except (PermissionError, IsADirectoryError) as e:
        raise RunError(f"checkpoint {str(path)!r} cannot be read: {e.strerror or _first_line(e)}; check the path "
                       "and its permissions") from None
    except Exception as e:  # anything else a damaged file makes torch.load raise (even an OSError: EINVAL)
        if "Unsupported global" in str(e):  # a sound pickle of Python objects (torch.save(model), ...)
            raise NotACheckpoint(
                f"{path} is not a genlab checkpoint: it holds pickled Python objects (e.g. a whole model saved "
                "with torch.save(model)), which genlab does not load; pass a checkpoint written by `genlab "
                "train` (RUN/checkpoints/step_*.pt or best.pt, or --checkpoint last|best)") from None
        raise _corrupt(path, f"{_first_line(e)}" if os.path.getsize(path) else "the file is empty") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        what = (f"a dict of {', '.join(map(str, list(ckpt)[:5]))}{', ...' if len(ckpt) > 5 else ''}"
                if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}")
        hint = " (the run's fixed sample noise)" if path.name == "noise.pt" else ""
        raise NotACheckpoint(f"{path} is not a genlab checkpoint: it holds {what}{hint}, not {', '.join(REQUIRED_KEYS)}"
                             "; pass a checkpoint written by `genlab train` (RUN/checkpoints/step_*.pt or best.pt, "
                             "or --checkpoint last|best)")
    digest = ckpt.pop(DIGEST_KEY, None)
    if digest is not None and digest != content_digest(ckpt):
        raise _corrupt(path, "its contents do not match the checksum they were written with")
    bad = _non_finite(ckpt)
    if bad is not None:
        raise _corrupt(path, f"non-finite weights in {bad}")
    return ckpt


def _corrupt(path: Path, cause: str) -> CorruptCheckpoint:
    older = older_checkpoint(path)
    fix = (f"use the older {older} instead (pass it to --checkpoint; `genlab train --resume` falls back to it "
           "by itself)" if older else "there is no older checkpoint to fall back to: train the run again")
    return CorruptCheckpoint(f"checkpoint {path} is corrupt ({cause}); {fix}", path, cause)


def _non_finite(ckpt: dict) -> str | None:
    """The first network weight (``nets.G.net.0.weight``) that holds NaN or an infinity, or None."""
    groups = {f"nets.{k}": v for k, v in (ckpt.get("nets") or {}).items()}
    if isinstance(ckpt.get("ema"), dict):
        groups["ema"] = ckpt["ema"]  # the EMA generator's own state dict
    for group, state in groups.items():
        for name, t in (state.items() if isinstance(state, dict) else ()):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{group}.{name}"
    return None


def resume_checkpoint(run: RunDir | str | Path, log: Callable[[str], None] = print, *,
                      set_aside: bool = True) -> Path | None:
    """The checkpoint a resume of ``run`` continues from: the newest step checkpoint that loads, or None when the
    run has none. A corrupt newer one is logged ("... is corrupt (...); resuming from ...") and, with
    ``set_aside``, renamed to ``step_X.pt.corrupt`` (kept, never deleted) so later commands do not pick it.
    Any other load failure (not a genlab checkpoint) is raised. The chosen file is loaded once on the CPU."""
    run = RunDir.of(run)
    files = run.checkpoint_files()
    for i in range(len(files) - 1, -1, -1):
        path = files[i]
        try:
            load_checkpoint(path, "cpu")
        except CorruptCheckpoint as e:
            older = files[i - 1] if i else None
            if older is None:
                raise RunError(f"{path} is corrupt ({e.cause}) and the run has no older checkpoint; train the "
                               f"run again (--overwrite)") from None
            kept = ""
            if set_aside:
                aside = path.with_name(path.name + CORRUPT_SUFFIX)
                os.replace(path, aside)
                kept = f", kept as {aside.name}"
            name = path.relative_to(run.path) if path.is_relative_to(run.path) else path
            log(f"{name} is corrupt ({e.cause}{kept}); resuming from {older.name}")
            continue
        return path
    return None


def prune(files: list[Path], keep: int) -> None:
    """Delete all but the newest ``keep`` of a run's step checkpoints (``files``, oldest first)."""
    old = files[:-keep] if keep > 0 else []
    if old:
        remove_owned_files(old[0].parent, "step_*.pt", old)
