"""Checkpoint files that allow a true resume (their contents: ``state.TrainState.state_dict``), RNG states.

Written to a temporary file then renamed; loaded with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.errors import RunError
from genlab.io import atomic_torch_save


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state_dict: dict) -> Path:
    """Write a checkpoint dict (``TrainState.state_dict()``) atomically."""
    return atomic_torch_save(state_dict, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise RunError(f"checkpoint {str(path)!r} cannot be read ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}); delete it to fall back to an older one") from None


def prune(files: list[Path], keep: int) -> None:
    for p in files[:-keep] if keep > 0 else []:
        p.unlink(missing_ok=True)
