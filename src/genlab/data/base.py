"""What crosses the data seam: an in-memory uint8 image array plus labels and class names."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ImageData:
    """A decoded, resized split held in memory.

    images: uint8 tensor (N, C, H, W) at the recipe's resolution and channels.
    labels: int64 tensor (N,) or None for unlabeled data.
    class_names: one name per class (empty when unlabeled).
    captions: optional per-image caption strings (text conditioning); None means "derive from class names".
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] = field(default_factory=list)
    captions: list[str] | None = None
    name: str = ""
    split: str = "train"

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labeled(self) -> bool:
        return self.labels is not None and self.num_classes > 0

    def subset(self, n: int) -> ImageData:
        """The first ``n`` images (``data.limit``)."""
        return ImageData(
            images=self.images[:n],
            labels=None if self.labels is None else self.labels[:n],
            class_names=self.class_names,
            captions=None if self.captions is None else self.captions[:n],
            name=self.name,
            split=self.split,
        )


def data_identity(data: ImageData) -> dict:
    """What identifies the training images a run learns from: sha256 of the uint8 array (and the labels, when
    there are some) plus its shape. Recorded in every checkpoint; a resume from another ``data.root`` is
    accepted only when it is equal (``genlab.resume.check_against_checkpoint``)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.images.numpy()).tobytes())
    if data.labels is not None:
        h.update(b"labels")
        h.update(np.ascontiguousarray(data.labels.numpy().astype(np.int64)).tobytes())
    return {"sha256": h.hexdigest(), "shape": [int(d) for d in data.images.shape]}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]; the one place this conversion happens on the way in."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]; the one place this conversion happens on the way out."""
    return images.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


class DataWarning(UserWarning):
    """A recoverable data problem: skipped unreadable images, missing captions, a local copy with a new checksum."""
