"""MNIST and Fashion-MNIST: four gzipped IDX files each (LeCun's format, magic 0x801 labels, 0x803 images)."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from genlab.data.images import fit_array
from genlab.data.sources import DATASETS, DatasetSource, Decoded, LoadOptions, RemoteFile
from genlab.errors import DataError

IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions

_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse an IDX file (gzipped when it ends in .gz) and check its magic number and length."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e} (corrupt or truncated? delete it and prepare again)") from None
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: only {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"{path} is not the expected IDX file: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: IDX header truncated")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{path}: IDX header announces shape {shape} ({expected} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(bytearray(data), dtype=dtype, offset=header).reshape(shape)  # writable copy


class IdxSource(DatasetSource):
    """A dataset published as train/t10k IDX image and label files."""

    splits = ("train", "test")
    native_channels = 1
    native_resolution = 28
    default_resolution = 28

    def split_files(self, folder: Path, split: str) -> tuple[Path, Path]:
        prefix = "train" if split == "train" else "t10k"
        return folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"

    def source_files(self, folder: Path, split: str) -> list[Path]:
        return list(self.split_files(folder, split))

    def decode(self, folder: Path, split: str, opts: LoadOptions) -> Decoded:
        images_path, labels_path = self.split_files(folder, split)
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(f"{self.name} {split}: {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() >= len(self.class_names):
            raise DataError(f"{labels_path}: label {labels.max()} out of range for {len(self.class_names)} classes")
        return Decoded(
            images=fit_array(images[:, None], opts.resolution, opts.channels),
            labels=labels.astype(np.int64),
            class_names=list(self.class_names),
        )


def _idx_files(md5s: dict[str, str], debian: dict[str, str] | None = None) -> tuple[RemoteFile, ...]:
    debian = debian or {}
    return tuple(RemoteFile(name, md5, (debian[name],) if name in debian else ()) for name, md5 in md5s.items())


class Mnist(IdxSource):
    name = "mnist"
    description = "MNIST handwritten digits, 28x28 grey, 60k train / 10k test"
    class_names = tuple(str(d) for d in range(10))
    base_url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    files = _idx_files(
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        }
    )


class FashionMnist(IdxSource):
    name = "fashion-mnist"
    description = "Zalando Fashion-MNIST clothing, 28x28 grey, 60k train / 10k test"
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )
    base_url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    apt_package = "dataset-fashion-mnist"
    files = _idx_files(
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        # Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 re-gzips the same files (new headers).
        debian={
            "train-images-idx3-ubyte.gz": "cf8536b0aa1a6ac5fa3f23001093305c",
            "train-labels-idx1-ubyte.gz": "10bea18fdb374794d4bb42e356e600c9",
            "t10k-images-idx3-ubyte.gz": "f78720b4224f21cce2f2ccf2d7a94c9a",
            "t10k-labels-idx1-ubyte.gz": "0d30e22e447f3c33dab9ed536400ac01",
        },
    )


DATASETS.add(Mnist.name, Mnist())
DATASETS.add(FashionMnist.name, FashionMnist())
