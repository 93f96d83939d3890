"""Fixtures for genlab.data tests: small files in the datasets' exact published formats, and a local HTTP server."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from genlab.data import DATASETS, RemoteFile, fetch

CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
    """A private cache, no data dir, no mirror, and a fake (empty) system data folder."""
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("GENLAB_MIRROR", raising=False)
    monkeypatch.setattr(fetch, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    return tmp_path


def cfg(name: str, **kw) -> SimpleNamespace:
    """A DataConfig stand-in with the same attributes. ``verify`` is off: the files written here are in the
    published formats but are not the published files (their md5 never matches); tests of the checksum refusal
    and of the real data pass ``verify=True``."""
    base = {"name": name, "root": None, "limit": None, "resolution": 28, "channels": 1, "strict": False,
            "download": False, "captions": None, "verify": False}
    base.update(kw)
    return SimpleNamespace(**base)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as published: big-endian magic (0, 0, 0x08 = ubyte, ndim), one uint32 per dimension, then data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_idx(folder: Path, n_train: int = 12, n_test: int = 6, side: int = 28, seed: int = 0) -> dict:
    """The four MNIST/Fashion-MNIST files with random images; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        out[split] = (images, labels)
    return out


def tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_cifar(folder: Path, per_batch: int = 3, seed: int = 0, extra=None) -> dict:
    """cifar-10-python.tar.gz as published: protocol-2 pickles of dicts with bytes keys under cifar-10-batches-py/."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        meta = {b"num_cases_per_batch": per_batch, b"label_names": CIFAR_NAMES, b"num_vis": 3072}
        tar_add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = [int(x) for x in rng.integers(0, 10, size=per_batch)]
            batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                     b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
            tar_add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
            batches[name] = (data, labels)
        if extra is not None:
            extra(tar)
    return batches


def jpeg_bytes(color, size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def make_flowers(folder: Path) -> dict:
    """102flowers.tgz (jpg/image_NNNNN.jpg) + imagelabels.mat + setid.mat, written like the originals."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    n = 9
    colors = [((37 * i) % 256, (91 * i) % 256, (53 * i + 40) % 256) for i in range(1, n + 1)]
    sizes = [(50, 40), (40, 60), (33, 33), (64, 48), (48, 64), (70, 30), (30, 70), (45, 45), (80, 50)]
    with tarfile.open(folder / "102flowers.tgz", "w:gz") as tar:
        for i in reversed(range(n)):  # archive order differs from split order
            tar_add(tar, f"jpg/image_{i + 1:05d}.jpg", jpeg_bytes(colors[i], sizes[i]))
    labels = np.array([[5, 1, 102, 7, 7, 3, 99, 2, 1]], dtype=np.float64)  # 1-based, as in the original
    savemat(folder / "imagelabels.mat", {"labels": labels})
    splits = {"trnid": [3, 1, 8], "valid": [2, 9], "tstid": [4, 5, 6, 7]}
    savemat(folder / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in splits.items()})
    return {"colors": colors, "labels": labels.ravel().astype(int), "splits": splits}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format, *args):
        self.requests.append(self.path)


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1 (random port); ``requests`` records every requested path."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    handler = functools.partial(type("H", (_QuietHandler,), {"requests": requests}), directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{server.server_address[1]}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def serve(http_server, monkeypatch):
    """serve(name, folder): publish folder's files on the mirror with their real checksums registered."""

    def _serve(name: str, folder: Path):
        source = DATASETS.get(name)
        dest = http_server.root / name
        dest.mkdir(parents=True, exist_ok=True)
        for f in source.files:
            (dest / f.filename).write_bytes((folder / f.filename).read_bytes())
        files = tuple(RemoteFile(f.filename, md5(dest / f.filename)) for f in source.files)
        monkeypatch.setattr(source, "files", files)
        monkeypatch.setenv("GENLAB_MIRROR", http_server.url)
        return http_server

    return _serve


@pytest.fixture
def fx():
    """The helpers above, for test modules (conftest is not imported directly)."""
    return SimpleNamespace(
        cfg=cfg, md5=md5, write_idx=write_idx, make_idx=make_idx, tar_add=tar_add, make_cifar=make_cifar,
        jpeg_bytes=jpeg_bytes, make_flowers=make_flowers,
    )
