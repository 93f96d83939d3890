"""Where tensors go: a device name people type -> a ``torch.device`` this machine has (one clear line otherwise).

Below everything that loads a checkpoint, so that reading a run never imports training.
"""
from __future__ import annotations

import torch

from genlab.errors import ConfigError

#: device names genlab accepts (``torch.device`` also takes ``cuda:N``)
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(name: str | torch.device) -> torch.device:
    """A device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) -> a device this machine has; ConfigError
    otherwise, before anything is loaded onto it (a checkpoint must not look broken because of the device)."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":  # the fastest this machine has: CUDA, then Apple's MPS, then the CPU
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{name!r} is not a device name; use one of {', '.join(DEVICE_NAMES)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"CUDA is not available on this machine (device {name!r}); use --device cpu "
                              "(train.device=cpu for training)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"MPS is not available on this machine (device {name!r}); use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} is not supported; use one of {', '.join(DEVICE_NAMES)}")
    return dev
