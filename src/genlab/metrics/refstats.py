"""Stages images -> features -> statistics, and the reference statistics cache.

Reference statistics are computed once per (reference identity, extractor name, extractor hash, variant, device
type) and cached atomically at ``cache_dir()/refstats/<reference key>-<extractor>-<hash>[-<variant>][-<device>].pt``
(the variant: an extractor given another resize, ``FeatureExtractor.with_resize``; no device suffix for the CPU).
Extraction runs in IEEE float32 on every device (``features.base.full_float32``: no TF32), so training's speed
settings never reach the statistics; the device is in the key because CPU and GPU kernels still round
differently. The reference key is
- a ``DatasetRef``: dataset (+ root hash), split, resolution, channels, limit;
- an ``ImageData``: its name, split, shape and a hash of its pixels and labels;
- a folder: its path hash and a fingerprint of its files (relative path, size, mtime), plus the decode size
  when one is given (``resolution`` / ``channels``), else ``asis`` (read at its own sizes, ``iter_folder``).
Each file also stores its full key; a file whose key differs (another extractor hash, another format
version) is never used: the statistics are recomputed and the file replaced.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab.data.base import ImageData
from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, cache_dir, content_digest
from genlab.metrics.features.base import FeatureExtractor
from genlab.metrics.protocols import BATCH_SIZE
from genlab.metrics.reference import (
    DatasetRef,
    Reference,
    content_hash,
    folder_files,
    iter_folder,
    load_reference,
    safe_name,
)
from genlab.metrics.stats import Features, FeatureStats, FeatureWarning
from genlab.metrics.work_progress import report

log = logging.getLogger("genlab.metrics")

# Bump when statistics or the file layout change, so old cache files are recomputed.
# 2: the true class of each kept raw row (``FeatureStats.labels``) for labeled references (ifid, class_acc).
# 3: extractors resize their input themselves (antialiased); folders read at their own size.
REFSTATS_VERSION = 3
# Raw reference feature rows kept for KID and precision/recall (a seeded subset of larger splits).
REFERENCE_ROWS = 10_000


def iter_batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for i in range(0, images.shape[0], batch_size):
        yield images[i : i + batch_size]


def compute_features(
    extractor: FeatureExtractor, batches: Iterable[torch.Tensor], task: str | None = None, total: int = 0
) -> Features:
    """Run ``extractor`` over image batches (uint8, or float in [-1, 1]) and gather features and logits.

    ``task``: report progress under this name (``total`` images expected; see ``genlab.metrics.work_progress``)."""
    return compute_all_features([extractor], batches, task, total)[0]


def compute_all_features(
    extractors: Sequence[FeatureExtractor], batches: Iterable[torch.Tensor], task: str | None = None, total: int = 0
) -> list[Features]:
    """``compute_features`` for several extractors over the same images, read (or sampled) once.

    Progress is reported after every chunk of the first extractor's ``batch_size`` images, so a long run (the
    paper protocol's 50,000 Inception images) shows its rate and time left within its first seconds."""
    feats: list[list[torch.Tensor]] = [[] for _ in extractors]
    logits: list[list[torch.Tensor]] = [[] for _ in extractors]
    done = 0
    step = max(1, extractors[0].batch_size)
    for batch in batches:
        for i in range(0, len(batch), step):
            chunk = batch[i:i + step]
            for k, extractor in enumerate(extractors):
                f, logit = extractor.features(chunk)
                feats[k].append(f)
                logits[k].append(logit)
            done += len(chunk)
            if task:
                report(task, done, total)
    if not done:
        raise GenlabError("no images to compute features of")
    out = []
    for f, logit in zip(feats, logits):
        all_logits = torch.cat(logit).numpy()
        # an extractor without a classifier head (0 classes, e.g. DINOv2) has no logits, not empty ones
        out.append(Features(torch.cat(f).numpy(), all_logits if all_logits.shape[-1] else None))
    return out


def folder_fingerprint(folder: Path) -> str:
    """sha256 prefix over the (relative path, size, mtime) of every file under ``folder``."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            st = p.stat() if p.exists() else p.lstat()  # a link that points nowhere: its own identity
            h.update(f"{p.relative_to(folder).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def reference_identity(
    reference: Reference, resolution: int | None = None, channels: int | None = None
) -> tuple[str, dict[str, Any]]:
    """(filename-safe key, JSON-able description) of a reference."""
    if isinstance(reference, DatasetRef):
        return reference.key(), reference.describe()
    if isinstance(reference, ImageData):
        n, c, h, w = reference.images.shape
        digest = content_hash(reference)
        key = f"{safe_name(reference.name or 'data')}-{reference.split}-{h}px-{c}ch-n{n}-{digest}"
        return key, {"dataset": reference.name, "split": reference.split, "resolution": h, "channels": c,
                     "images": n, "content_hash": digest}
    folder = Path(reference).expanduser().resolve()
    if (resolution is None) != (channels is None):
        raise GenlabError(f"a folder reference ({folder}) is decoded at a resolution and a channel count: "
                          "give both or neither")
    where = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    digest = folder_fingerprint(folder)
    if resolution is None:
        return f"folder{where}-asis-{digest}", {"folder": str(folder), "decoded": "as is", "fingerprint": digest}
    key = f"folder{where}-{resolution}px-{channels}ch-{digest}"
    return key, {"folder": str(folder), "resolution": resolution, "channels": channels, "fingerprint": digest}


def device_type(extractor: FeatureExtractor) -> str:
    """Where ``extractor`` runs ("cpu", "cuda"); an object with only ``features`` counts as the CPU."""
    return torch.device(getattr(extractor, "device", "cpu")).type


def refstats_path(key: str, extractor: FeatureExtractor) -> Path:
    variant = f"-{extractor.variant}" if extractor.variant else ""  # e.g. the paper protocol's resize
    device = device_type(extractor)
    suffix = "" if device == "cpu" else f"-{device}"
    return cache_dir() / "refstats" / f"{key}-{safe_name(extractor.name)}-{extractor.hash}{variant}{suffix}.pt"


def check_stats(stats: FeatureStats, dim: int) -> str | None:
    """None when ``stats`` fit an extractor of ``dim`` features (shapes, dtypes, finite values, at least 2
    images, a symmetric covariance), else what is wrong with them."""
    import numpy as np

    if stats.mu.shape != (dim,) or stats.sigma.shape != (dim, dim):
        return f"mean {tuple(stats.mu.shape)} and covariance {tuple(stats.sigma.shape)} for {dim} features"
    if stats.mu.dtype != np.float64 or stats.sigma.dtype != np.float64:
        return f"dtype {stats.mu.dtype}/{stats.sigma.dtype}, not float64"
    if stats.n < 2:
        return f"made from {stats.n} image(s)"
    arrays = {"mean": stats.mu, "covariance": stats.sigma, "feature rows": stats.features}
    for what, a in arrays.items():
        if a is not None and not np.isfinite(a).all():
            return f"non-finite values in the {what}"
    if not np.allclose(stats.sigma, stats.sigma.T, rtol=1e-6, atol=1e-9 * max(1.0, float(np.abs(stats.sigma).max()))):
        return "a covariance that is not symmetric"
    if stats.features is not None and stats.features.shape[1:] != (dim,):
        return f"feature rows of shape {tuple(stats.features.shape)}"
    if stats.labels is not None and (stats.features is None or len(stats.labels) != len(stats.features)):
        return "labels that do not match the feature rows"
    return None


def _read(path: Path, expected: dict[str, Any], dim: int) -> FeatureStats | None:
    """The cached statistics at ``path`` when they were made for ``expected`` and fit (``check_stats``, the
    checksum they were written with); otherwise None (recomputed), with a warning when the file is damaged."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        # files written before the device was recorded were computed on the CPU (genlab had not run on a GPU)
        if not isinstance(payload, dict) or {"device": "cpu", **(payload.get("key") or {})} != expected:
            log.info("reference statistics %s were made for %s; recomputing", path,
                     payload.get("key") if isinstance(payload, dict) else "something else")
            return None
        digest = payload.get("digest")
        if digest is not None and digest != content_digest(payload["stats"]):
            why: str | None = "its contents do not match the checksum they were written with"
        else:
            stats = FeatureStats.from_state(payload["stats"])
            why = check_stats(stats, dim)
    except Exception as e:
        why = f"unreadable: {type(e).__name__}"
    if why is not None:
        warnings.warn(f"cached reference statistics {path} do not fit ({why}); computing them again",
                      FeatureWarning, stacklevel=3)
        return None
    return stats


def reference_stats(
    reference: Reference,
    extractor: FeatureExtractor,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    batch_size: int = BATCH_SIZE,
    cache: bool = True,
) -> tuple[FeatureStats, dict[str, Any]]:
    """Statistics of ``reference`` under ``extractor`` (cached), and a description of the reference.

    ``resolution`` / ``channels`` say how to decode a folder reference (None: read as it is, at its own
    sizes); datasets carry their own.
    """
    key, described = reference_identity(reference, resolution, channels)
    expected = {"version": REFSTATS_VERSION, "reference": key, "extractor": extractor.name,
                "extractor_hash": extractor.hash, "rows": REFERENCE_ROWS, "device": device_type(extractor)}
    if extractor.variant:  # only then: the files of extractors as registered keep their keys
        expected["variant"] = extractor.variant
    path = refstats_path(key, extractor)
    stats = _read(path, expected, extractor.feature_dim) if cache else None
    if stats is not None:
        log.info("reusing reference statistics %s", path)
        return stats, {**described, "cached": True}
    labels = None
    if isinstance(reference, (str, os.PathLike)) and resolution is None:
        total = len(folder_files(reference))
        batches: Iterable[torch.Tensor] = iter_folder(reference, batch_size)
    else:
        data = load_reference(reference, resolution, channels)
        total = len(data)
        batches = iter_batches(data.images, batch_size)
        labels = data.labels.numpy() if data.labeled else None
    if total < 2:
        raise GenlabError(f"the reference {described} holds {total} image(s); statistics need at least 2")
    feats = compute_features(extractor, batches, task="reference features", total=total)
    stats = FeatureStats.from_features(feats, keep=REFERENCE_ROWS, seed=0, labels=labels)
    if cache:
        try:
            state = stats.state()
            atomic_torch_save({"key": expected, "description": described, "stats": state,
                               "digest": content_digest(state)}, path)
        except OSError as e:  # a read-only cache only costs time
            log.warning("could not cache reference statistics at %s: %s", path, e)
    return stats, {**described, "cached": False}
