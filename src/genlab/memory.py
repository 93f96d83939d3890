"""Will it fit? Estimates of what a request needs in memory, checked before anything is allocated.

A size that cannot fit (``model.hidden_dim=1e7``, ``log.num_samples=1e8``, ``genlab sample -n 1e9``) would
otherwise allocate gigabytes and end in an out-of-memory crash or a swapping machine; :func:`check_fits` refuses
it first with one line that names the request, the estimate and what this machine has.
"""
from __future__ import annotations

import os

from genlab.errors import ConfigError

#: leave this share of the available memory to everything else (the data, activations, other programs)
HEADROOM = 0.8


def available_bytes(device: str = "cpu") -> int | None:
    """Memory this process can still take on ``device`` (``MemAvailable`` of /proc/meminfo on Linux, the free
    memory of a CUDA device), or None when it cannot be told."""
    if str(device).startswith("cuda"):
        try:
            import torch

            free, _ = torch.cuda.mem_get_info(torch.device(device))
            return int(free)
        except Exception:
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    """Bytes as ``3.2 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"


def check_fits(need: int, what: str, fix: str, device: str = "cpu") -> None:
    """ConfigError when ``need`` bytes for ``what`` exceed :data:`HEADROOM` of the memory available on
    ``device`` (nothing is checked when that cannot be told)."""
    have = available_bytes(device)
    if have is None or need <= HEADROOM * have:
        return
    where = "GPU memory" if str(device).startswith("cuda") else "memory"
    raise ConfigError(f"{what} needs about {human(need)}, more than the {human(have)} of {where} available here; "
                      f"{fix}")
