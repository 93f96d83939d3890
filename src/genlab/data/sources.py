"""What a dataset source is: its published files, splits and classes, and how it is located and decoded.

Every named dataset is one ``DatasetSource`` instance in the ``DATASETS`` registry; the registry's names are
the CLI's choices. A source finds (or downloads) its raw files, then decodes one split into uint8 arrays at
the requested resolution and channels. Caching and limits are handled once, in ``genlab.data.loading``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genlab.data import fetch
from genlab.errors import DataError
from genlab.registry import Registry

MIRROR_ENV = "GENLAB_MIRROR"  # base URL of a mirror laid out as <mirror>/<dataset name>/<file name>


@dataclass(frozen=True)
class RemoteFile:
    """One published raw file and its MD5 as published; ``also_md5`` lists faithful repacks of it."""

    filename: str
    md5: str
    also_md5: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """What ``dataset_info(name)`` returns; ``files`` holds (file name, URL, md5)."""

    name: str
    description: str
    splits: tuple[str, ...]
    num_classes: int
    class_names: tuple[str, ...]
    labeled: bool
    files: tuple[tuple[str, str, str], ...]
    channels: int  # native channels (1 or 3)
    resolution: int | None  # native side in pixels; None when images vary in size


@dataclass(frozen=True)
class LoadOptions:
    """The validated subset of a DataConfig that decoding needs."""

    resolution: int
    channels: int
    root: Path | None = None
    download: bool = True
    verify: bool = True  # data.verify: a raw file with another checksum than the published one is refused
    strict: bool = False
    limit: int | None = None
    captions: Path | None = None


@dataclass
class Decoded:
    """One decoded split: uint8 images (N, C, H, W) already at the requested resolution and channels."""

    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]
    captions: list[str] | None = None
    skipped: list[str] = field(default_factory=list)  # "relative/path (reason)" of unreadable files
    notes: list[str] = field(default_factory=list)  # warnings repeated on every load, cached or not
    complete: bool = True  # False when decoding stopped early at ``LoadOptions.limit``


class DatasetSource:
    """Base of every dataset source. Subclasses set the class attributes and implement ``decode``."""

    name: str = ""
    description: str = ""
    splits: tuple[str, ...] = ("train", "test")
    class_names: tuple[str, ...] = ()
    files: tuple[RemoteFile, ...] = ()
    base_url: str = ""  # official location; a file's URL is base_url + file name unless $GENLAB_MIRROR is set
    apt_package: str | None = None  # Debian package that installs the raw files under /usr/share/datasets
    native_channels: int = 3
    native_resolution: int | None = None
    default_resolution: int = 32
    partial_decode: bool = False  # True when decode() honours LoadOptions.limit by stopping early

    def url(self, f: RemoteFile) -> str:
        mirror = os.environ.get(MIRROR_ENV)
        if mirror:
            return f"{mirror.rstrip('/')}/{self.name}/{f.filename}"
        return self.base_url + f.filename

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.name,
            description=self.description,
            splits=self.splits,
            num_classes=len(self.class_names),
            class_names=self.class_names,
            labeled=bool(self.class_names),
            files=tuple((f.filename, self.url(f), f.md5) for f in self.files),
            channels=self.native_channels,
            resolution=self.native_resolution,
        )

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r}; choose one of: {', '.join(self.splits)}")

    def locate(self, root: Path | None) -> Path | None:
        """The folder holding every raw file, or None; never downloads, never hashes."""
        return fetch.locate(self.name, [f.filename for f in self.files], root)

    def prepare(self, root: Path | None, download: bool, verify: bool = True) -> Path:
        """Locate or download the raw files, verify their checksums (``verify``: refuse a mismatch, else only
        warn) and return their folder."""
        return fetch.fetch(self, root, download, verify)

    def source_files(self, folder: Path, split: str) -> list[Path]:
        """The raw files one split is decoded from (their identity keys the prepared cache)."""
        return [folder / f.filename for f in self.files]

    def identity(self, folder: Path, split: str, opts: LoadOptions) -> list[Any]:
        """JSON-able facts that change whenever the decoded split would change."""
        return fetch.file_identity(self.source_files(folder, split))

    def decode(self, folder: Path, split: str, opts: LoadOptions) -> Decoded:
        raise NotImplementedError


DATASETS: Registry[DatasetSource] = Registry("dataset")
