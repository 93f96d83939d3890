"""CIFAR-10: pickled batches (data_batch_1..5, test_batch, batches.meta) inside cifar-10-python.tar.gz.

The archive is read in place. The pickles are loaded with an unpickler that only accepts plain containers
and numpy arrays, so a tampered archive cannot run code.
"""
from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from genlab.data.archive import read_members
from genlab.data.images import fit_array
from genlab.data.sources import DATASETS, DatasetSource, Decoded, LoadOptions, RemoteFile
from genlab.errors import DataError

ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META = "batches.meta"
MAX_MEMBER_BYTES = 128 << 20  # a published batch is 30 MiB (10000 x 3072 bytes, pickled)

# The only globals a CIFAR pickle needs: numpy's array and scalar reconstructors (numpy 1 and 2 names), and
# codecs.encode, which Python 3 uses to pickle bytes at protocol 2.
_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
_scalar = np.int64(0).__reduce__()[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    _ALLOWED[(_mod, "scalar")] = _scalar


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def unpickle(data: bytes, what: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise DataError(f"cannot unpickle {what}: {e}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{what} is not a CIFAR batch (a {type(obj).__name__}, not a dict)")
    return obj


class Cifar10(DatasetSource):
    name = "cifar10"
    description = "CIFAR-10 tiny photos, 32x32 RGB, 50k train / 10k test"
    class_names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    base_url = "https://www.cs.toronto.edu/~kriz/"
    files = (RemoteFile(ARCHIVE, "c58f30108f718f92721af3b95e74349a"),)
    native_resolution = 32
    default_resolution = 32

    def decode(self, folder: Path, split: str, opts: LoadOptions) -> Decoded:
        archive = folder / ARCHIVE
        batches = TRAIN_BATCHES if split == "train" else TEST_BATCHES
        wanted = set(batches) | {META}
        found = {
            PurePosixPath(name).name: data
            for name, data in read_members(archive, lambda n: PurePosixPath(n).name in wanted, MAX_MEMBER_BYTES)
        }
        missing = sorted(wanted - set(found))
        if missing:
            raise DataError(f"{archive} lacks {', '.join(missing)}; is it cifar-10-python.tar.gz?")
        meta = unpickle(found[META], f"{ARCHIVE}:{META}")
        try:
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
        except KeyError:
            raise DataError(f"{ARCHIVE}:{META} has no label_names") from None
        images, labels = [], []
        for batch in batches:
            d = unpickle(found[batch], f"{ARCHIVE}:{batch}")
            try:
                data = np.asarray(d[b"data"], dtype=np.uint8)
                lab = np.asarray(d[b"labels"], dtype=np.int64)
            except KeyError as e:
                raise DataError(f"{ARCHIVE}:{batch} has no {e.args[0]!r} entry") from None
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(lab):
                raise DataError(
                    f"{ARCHIVE}:{batch}: expected (N, 3072) data and N labels, got {data.shape} and {lab.shape}"
                )
            images.append(data.reshape(-1, 3, 32, 32))  # rows are 1024 red, 1024 green, 1024 blue values
            labels.append(lab)
        all_labels = np.concatenate(labels)
        if all_labels.size and (all_labels.min() < 0 or all_labels.max() >= len(class_names)):
            raise DataError(f"{ARCHIVE}: labels outside 0..{len(class_names) - 1}")
        return Decoded(
            images=fit_array(np.concatenate(images), opts.resolution, opts.channels),
            labels=all_labels,
            class_names=class_names,
        )


DATASETS.add(Cifar10.name, Cifar10())
