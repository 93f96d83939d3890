"""The prepared-split cache: each decoded, resized split is written once and read back on later loads.

Files live at ``cache_dir()/prepared/<name>-<split>-<resolution>-<channels>-<key>.pt`` where ``key`` hashes
the source files' identity (path, size, mtime), the decoding options and ``FORMAT_VERSION``. They are
written atomically with a checksum of their contents and read with ``torch.load(weights_only=True)``; one that
is unreadable or does not fit (checksum, dtype, shape, labels, the size it was made for) is decoded again, with
a warning.
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data.base import DataWarning
from genlab.data.sources import Decoded
from genlab.io import atomic_torch_save, cache_dir, content_digest

log = logging.getLogger("genlab.data")

# Bump when decoding or resizing changes, so old prepared files are not reused. 2: raw files are verified
# before decoding (a split cached by 1 may come from another dataset's files with the same names).
FORMAT_VERSION = 2


def prepared_path(name: str, split: str, resolution: int, channels: int, identity: Any) -> Path:
    blob = json.dumps([FORMAT_VERSION, identity], sort_keys=True, default=str).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    return cache_dir() / "prepared" / f"{name}-{split}-{resolution}-{channels}-{key}.pt"


def write_prepared(path: Path, decoded: Decoded) -> None:
    payload = {
        "images": torch.from_numpy(np.ascontiguousarray(decoded.images)),
        "labels": None if decoded.labels is None else torch.from_numpy(np.asarray(decoded.labels, dtype=np.int64)),
        "class_names": list(decoded.class_names),
        "captions": None if decoded.captions is None else list(decoded.captions),
        "skipped": list(decoded.skipped),
        "notes": list(decoded.notes),
        "complete": bool(decoded.complete),
        "version": FORMAT_VERSION,
    }
    try:
        atomic_torch_save({**payload, "digest": content_digest(payload)}, path)
    except OSError as e:  # a read-only cache only costs speed
        warnings.warn(f"could not cache the prepared split at {path}: {e}", DataWarning, stacklevel=3)


def _misfit(p: Any, resolution: int, channels: int) -> str | None:
    """Why a loaded prepared file does not fit a split at ``resolution`` x ``channels``, or None."""
    if not isinstance(p, dict):
        return f"it holds a {type(p).__name__}"
    digest = p.pop("digest", None)
    if digest is not None and digest != content_digest(p):
        return "its contents do not match the checksum they were written with"
    images, labels = p.get("images"), p.get("labels")
    if p.get("version") != FORMAT_VERSION:
        return f"format version {p.get('version')!r}"
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        return "its images are not a uint8 (N, C, H, W) tensor"
    n, c, h, w = images.shape
    if (c, h, w) != (channels, resolution, resolution) or n == 0:
        return f"images of shape {tuple(images.shape)}, not (N, {channels}, {resolution}, {resolution})"
    if labels is not None and (not isinstance(labels, torch.Tensor) or labels.shape != (n,)
                               or labels.dtype != torch.int64):
        return f"labels that do not match its {n} images"
    if labels is not None and len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < 1_000_000):
        return "labels out of range"
    captions = p.get("captions")
    if captions is not None and len(captions) != n:
        return f"{len(captions)} captions for {n} images"
    return None


def read_prepared(path: Path, resolution: int, channels: int) -> Decoded | None:
    """The prepared split at ``path``, or None (decode again) when there is none or it does not fit."""
    if not path.is_file():
        return None
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
        why = _misfit(p, resolution, channels)
        if why is None:
            decoded = Decoded(
                images=p["images"].numpy(),
                labels=None if p["labels"] is None else p["labels"].numpy(),
                class_names=list(p["class_names"]),
                captions=p["captions"],
                skipped=list(p["skipped"]),
                notes=list(p["notes"]),
                complete=bool(p["complete"]),
            )
    except Exception as e:
        why = f"unreadable: {type(e).__name__}"
    if why is not None:
        warnings.warn(f"the prepared split {path} does not fit ({why}); decoding the split again", DataWarning,
                      stacklevel=3)
        return None
    log.info("read prepared split %s", path)
    return decoded
