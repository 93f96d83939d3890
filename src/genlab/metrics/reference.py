"""What a metric compares against: a dataset split (``DatasetRef``), an in-memory ``ImageData``, or a folder.

One yardstick per dataset: the reference of a dataset is its split at the dataset's native size
(``native_size``: Fashion-MNIST/MNIST 28px/1ch, CIFAR-10 32px/3ch; datasets whose images vary in size,
Flowers-102 and image folders, at the fixed ``NO_NATIVE_RESOLUTION`` = 64px, 3ch), whatever size the
model generates; the extractor resizes what it is given (``features.base.to_input``).

Datasets and ``ImageData`` become uint8 ``ImageData`` through ``genlab.data.load_dataset``. A folder given
with an explicit decode size (``resolution`` and ``channels``) does too, through the ``image-folder`` source
(decoded, cropped and resized exactly like datasets are). A folder without one is read as it is
(``iter_folder``): each image centre-cropped to a square at its own size and kept grey or RGB as stored,
streamed in batches of one size, so folders of mixed sizes work and memory stays at one batch.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from genlab.data import dataset_info, load_dataset
from genlab.data.base import DataWarning, ImageData
from genlab.data.folder import scan
from genlab.data.images import check_pixels, fit_image
from genlab.errors import DataError, GenlabError
from genlab.metrics.protocols import BATCH_SIZE

#: the size (px, 3 channels) at which datasets without a native size are referenced and classified
NO_NATIVE_RESOLUTION = 64
#: Pillow modes read as one grey channel when a folder is read at its own size; anything else is RGB
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class DatasetRef:
    """One split of a registered dataset at one resolution and channel count.

    Also a valid ``cfg`` for ``genlab.data.load_dataset`` (it carries ``root``, ``limit``, ``strict``,
    ``download`` and ``captions``). ``limit`` keeps the first N images of the split.
    """

    name: str
    split: str
    resolution: int
    channels: int
    root: str | None = None
    limit: int | None = None
    download: bool = False
    strict: bool = False
    captions: str | None = None
    verify: bool = True  # data.verify: refuse raw files whose checksum is not the dataset's published one

    def key(self) -> str:
        """A filename-safe identity: name, split, resolution, channels, plus root and limit when set."""
        parts = [dataset_key(self.name, self.root), self.split, f"{self.resolution}px", f"{self.channels}ch"]
        if self.limit is not None:
            parts.append(f"limit{self.limit}")
        return "-".join(parts)

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "split": self.split, "resolution": self.resolution,
                "channels": self.channels, "root": self.root, "limit": self.limit}


Reference = Union[DatasetRef, ImageData, str, os.PathLike]


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def dataset_key(name: str, root: str | os.PathLike | None = None) -> str:
    """A dataset's filename-safe identity: its name, plus a hash of ``root`` when one is set."""
    key = safe_name(name)
    if root:
        key += "-root" + hashlib.sha256(str(Path(root).expanduser().resolve()).encode()).hexdigest()[:8]
    return key


def native_size(name: str) -> tuple[int, int]:
    """(resolution, channels) a dataset is referenced and classified at: its native size, or
    ``NO_NATIVE_RESOLUTION`` px with its native channels when its images vary in size."""
    info = dataset_info(name)
    return int(info.resolution or NO_NATIVE_RESOLUTION), int(info.channels)


def native_ref(name: str, split: str, root: str | None = None, verify: bool = True) -> DatasetRef:
    """A dataset split at its native size (``native_size``): the one reference all its models are judged by."""
    res, ch = native_size(name)
    return DatasetRef(name, split, res, ch, root=root, verify=verify)


def load_split(ref: DatasetRef) -> ImageData:
    """``genlab.data.load_dataset`` on ``ref``."""
    return load_dataset(ref, ref.split)


def folder_ref(folder: str | os.PathLike, resolution: int, channels: int) -> DatasetRef:
    """A folder of images as an ``image-folder`` dataset (its ``train`` split: the folder itself)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise GenlabError(f"{path}: no such folder of images")
    return DatasetRef(name="image-folder", split="train", resolution=resolution, channels=channels, root=str(path))


def load_reference(reference: Reference, resolution: int | None = None, channels: int | None = None) -> ImageData:
    """The reference's images as uint8 ``ImageData``; a folder needs ``resolution`` and ``channels``
    (without them, read it with ``iter_folder``)."""
    if isinstance(reference, ImageData):
        return reference
    if isinstance(reference, DatasetRef):
        return load_split(reference)
    if resolution is None or channels is None:
        raise GenlabError(f"a folder reference ({reference}) needs a resolution and a channel count")
    return load_split(folder_ref(reference, resolution, channels))


def folder_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder in ``image-folder``'s file order (its ``train`` split: class sub-folders
    or loose images, ``test/`` left out)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise GenlabError(f"{path}: no such folder of images")
    files = scan(path, "train").files
    if not files:
        raise DataError(f"{path}: no image files (png, jpg, webp, bmp, gif, tiff)")
    return files


def _read_as_is(path: Path) -> np.ndarray:
    """(C, S, S) uint8: the image centre-cropped to its shorter side, grey or RGB as stored, not resampled
    (alpha composited on white, 16-bit grey scaled, as ``genlab.data.images`` does)."""
    with Image.open(path) as im:
        check_pixels(im)
        im.load()
        channels = 1 if im.mode in GREY_MODES else 3
        w, h = im.size
        s = min(w, h)
        if (w, h) != (s, s):
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))  # type: ignore[assignment]  # an Image, as open's
        return fit_image(im, s, channels).transpose(2, 0, 1)


def iter_folder(folder: str | os.PathLike, batch_size: int = BATCH_SIZE, sizes: list[str] | None = None
                ) -> Iterator[torch.Tensor]:
    """uint8 (n, C, S, S) batches of a folder's images read as they are (see the module docstring).

    Images are grouped by (size, channels); a batch is yielded when its group fills ``batch_size`` and the
    rest at the end. Unreadable files are skipped and named in one ``DataWarning``. ``sizes``: a list that
    receives the distinct sizes met, sorted, e.g. ``["16px/1ch", "64px/3ch"]``, once all are read."""
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    skipped: list[str] = []
    read = 0
    for path in folder_files(folder):
        try:
            a = _read_as_is(path)
        except Exception as e:
            skipped.append(f"{path.name} ({type(e).__name__}: {e})")
            continue
        read += 1
        group = groups.setdefault(a.shape, [])
        group.append(a)
        if len(group) >= batch_size:
            yield torch.from_numpy(np.stack(group))
            group.clear()
    if not read:
        raise DataError(f"{folder}: none of its {len(skipped)} image files could be read, e.g. {skipped[0]}")
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} unreadable image file(s): {'; '.join(skipped[:5])}",
                      DataWarning, stacklevel=2)
    if sizes is not None:
        sizes[:] = [f"{side}px/{c}ch" for c, side, _ in sorted(groups, key=lambda k: (k[1], k[0]))]
    for group in groups.values():
        if group:
            yield torch.from_numpy(np.stack(group))


def content_hash(data: ImageData) -> str:
    """sha256 prefix of an ImageData's pixels and labels: identifies in-memory data in cache keys."""
    h = hashlib.sha256()
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.images.contiguous().numpy().tobytes())
    if data.labels is not None:
        h.update(data.labels.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]
