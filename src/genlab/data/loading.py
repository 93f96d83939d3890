"""The data seam's entry points: ``load_dataset``, ``prepare_dataset`` and ``dataset_info``.

``load_dataset`` turns a DataConfig into an in-memory ``ImageData``:
locate raw files -> prepared cache hit? -> else (download, verify) decode + resize once -> cache -> limit.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data.base import DataWarning, ImageData
from genlab.data.cache import prepared_path, read_prepared, write_prepared
from genlab.data.sources import DATASETS, DatasetInfo, DatasetSource, Decoded, LoadOptions
from genlab.errors import ConfigError, DataError

log = logging.getLogger("genlab.data")

MAX_RESOLUTION = 4096


def _int_option(cfg: Any, key: str, default: int | None) -> int | None:
    value = getattr(cfg, key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"data.{key} must be an integer, got {value!r}")
    return int(value)


def load_options(cfg: Any, source: DatasetSource) -> LoadOptions:
    """Validate the DataConfig-like ``cfg`` (attributes read with defaults) for ``source``."""
    resolution = _int_option(cfg, "resolution", source.default_resolution)
    channels = _int_option(cfg, "channels", source.native_channels)
    limit = _int_option(cfg, "limit", None)
    if resolution is None or not 1 <= resolution <= MAX_RESOLUTION:
        raise ConfigError(f"data.resolution must be between 1 and {MAX_RESOLUTION}, got {resolution}")
    if channels not in (1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {channels}")
    if limit is not None and limit < 1:
        raise ConfigError(f"data.limit must be a positive number of images or null, got {limit}")
    root = getattr(cfg, "root", None)
    captions = getattr(cfg, "captions", None)
    if captions is not None and source.name != "image-folder":
        raise ConfigError(f"data.captions is only read for image-folder, not {source.name}")
    return LoadOptions(
        resolution=resolution,
        channels=channels,
        root=None if root in (None, "") else Path(root).expanduser(),
        download=bool(getattr(cfg, "download", True)),
        verify=bool(getattr(cfg, "verify", True)),
        strict=bool(getattr(cfg, "strict", False)),
        limit=limit,
        captions=None if captions in (None, "") else Path(captions),
    )


def _cache_file(source: DatasetSource, folder: Path, split: str, opts: LoadOptions, partial: bool) -> Path:
    identity = [source.name, split, source.identity(folder, split, opts)]
    if not opts.verify:  # a split decoded from unverified files is never reused by a verifying load
        identity.append("unverified")
    if partial:
        identity.append(["limit", opts.limit])
    return prepared_path(source.name, split, opts.resolution, opts.channels, identity)


def _cached(source: DatasetSource, folder: Path, split: str, opts: LoadOptions) -> Decoded | None:
    decoded = read_prepared(_cache_file(source, folder, split, opts, partial=False), opts.resolution, opts.channels)
    if decoded is None and source.partial_decode and opts.limit is not None:
        decoded = read_prepared(_cache_file(source, folder, split, opts, partial=True), opts.resolution,
                                opts.channels)
    return decoded


def _decode_options(source: DatasetSource, opts: LoadOptions) -> LoadOptions:
    """Grey datasets are decoded and cached with one channel; RGB copies are made in memory on load."""
    return replace(opts, channels=1) if source.native_channels == 1 else opts


def prepared_file(cfg: Any, split: str = "train") -> Path | None:
    """Where ``load_dataset(cfg, split)`` caches its decoded split; None while the raw files are not found."""
    source = DATASETS.get(cfg.name)
    source.check_split(split)
    opts = _decode_options(source, load_options(cfg, source))
    folder = source.locate(opts.root)
    if folder is None:
        return None
    full = _cache_file(source, folder, split, opts, partial=False)
    if full.is_file() or not (source.partial_decode and opts.limit is not None):
        return full
    return _cache_file(source, folder, split, opts, partial=True)


def load_dataset(cfg: Any, split: str = "train") -> ImageData:
    """Load one split of ``cfg.name`` as uint8 (N, C, H, W) images at ``cfg.resolution`` / ``cfg.channels``.

    The first load decodes and resizes every image once and caches the result (see ``genlab.data.cache``);
    later loads read that file. ``cfg.limit`` keeps the first N images in file order.
    """
    source = DATASETS.get(cfg.name)
    source.check_split(split)
    wanted = load_options(cfg, source)
    opts = _decode_options(source, wanted)
    folder = source.locate(opts.root)
    decoded = None if folder is None else _cached(source, folder, split, opts)
    if decoded is None:
        folder = source.prepare(opts.root, opts.download, opts.verify)
        decoded = source.decode(folder, split, opts)
        if len(decoded.images) == 0:
            raise DataError(f"{source.name} {split}: no images")
        write_prepared(_cache_file(source, folder, split, opts, partial=not decoded.complete), decoded)
    _report(source, decoded, folder)
    images = decoded.images
    if images.shape[1] == 1 and wanted.channels == 3:
        images = np.repeat(images, 3, axis=1)
    data = ImageData(
        images=torch.from_numpy(images),
        labels=None if decoded.labels is None else torch.from_numpy(np.asarray(decoded.labels, dtype=np.int64)),
        class_names=list(decoded.class_names),
        captions=decoded.captions,
        name=source.name,
        split=split,
    )
    if opts.limit is not None and opts.limit < len(data):
        data = data.subset(opts.limit)
    return data


def load_training_set(cfg: Any, batch_size: int) -> ImageData:
    """The training split of the DataConfig-like ``cfg`` (``data.limit`` applied), checked to fill one batch."""
    data = load_dataset(cfg, split="train")
    if batch_size > len(data):
        raise ConfigError(f"train.batch_size={batch_size} is larger than the training set ({len(data)} images of "
                          f"{data.name}); lower train.batch_size or raise data.limit")
    return data


def _report(source: DatasetSource, decoded: Decoded, folder: Path) -> None:
    for note in decoded.notes:
        warnings.warn(note, DataWarning, stacklevel=3)
    if decoded.skipped:
        shown = "; ".join(decoded.skipped[:5]) + ("; ..." if len(decoded.skipped) > 5 else "")
        warnings.warn(
            f"{source.name}: skipped {len(decoded.skipped)} unreadable image file(s) under {folder}: {shown} "
            "(set data.strict to fail instead)",
            DataWarning,
            stacklevel=3,
        )


def prepare_dataset(name: str, root: str | Path | None = None, download: bool = True, verify: bool = True) -> Path:
    """Locate (or download) and verify ``name``'s raw files; return the folder that holds them. ``verify``:
    a file whose checksum is not the published one is refused (False: only warned about)."""
    source = DATASETS.get(name)
    return source.prepare(None if root in (None, "") else Path(root).expanduser(), download, verify)


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name).info()
