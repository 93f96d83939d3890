"""The prepared-split cache: each decoded, resized split is written once and read back on later loads.

Files live at ``cache_dir()/prepared/<name>-<split>-<resolution>-<channels>-<key>.pt`` where ``key`` hashes
the source files' identity (path, size, mtime), the decoding options and ``FORMAT_VERSION``. They are
written atomically and read with ``torch.load(weights_only=True)``; an unreadable one is rebuilt.
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
from genlab.io import atomic_torch_save, cache_dir

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
        atomic_torch_save(payload, path)
    except OSError as e:  # a read-only cache only costs speed
        warnings.warn(f"could not cache the prepared split at {path}: {e}", DataWarning, stacklevel=3)


def read_prepared(path: Path) -> Decoded | None:
    if not path.is_file():
        return None
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
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
        log.warning("ignoring unreadable prepared file %s (%s); decoding again", path, e)
        return None
    log.info("read prepared split %s", path)
    return decoded
