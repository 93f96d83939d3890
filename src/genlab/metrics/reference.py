"""What a metric compares against: a dataset split (``DatasetRef``), an in-memory ``ImageData``, or a folder.

All three become uint8 ``ImageData`` through ``genlab.data.load_dataset`` (folders through its
``image-folder`` source, so they are decoded, cropped and resized exactly like datasets are).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from genlab.data import load_dataset
from genlab.data.base import ImageData
from genlab.errors import GenlabError


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
    """The reference's images as uint8 ``ImageData``; a folder needs ``resolution`` and ``channels``."""
    if isinstance(reference, ImageData):
        return reference
    if isinstance(reference, DatasetRef):
        return load_split(reference)
    if resolution is None or channels is None:
        raise GenlabError(f"a folder reference ({reference}) needs a resolution and a channel count")
    return load_split(folder_ref(reference, resolution, channels))


def content_hash(data: ImageData) -> str:
    """sha256 prefix of an ImageData's pixels and labels: identifies in-memory data in cache keys."""
    h = hashlib.sha256()
    h.update(str(tuple(data.images.shape)).encode())
    h.update(data.images.contiguous().numpy().tobytes())
    if data.labels is not None:
        h.update(data.labels.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]
