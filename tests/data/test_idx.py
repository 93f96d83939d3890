"""MNIST / Fashion-MNIST from IDX files: parsing, resizing, channels, the prepared cache and limits."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import idx as idx_module
from genlab.data import load_dataset, prepared_file
from genlab.errors import ConfigError, DataError


def test_native_size_is_loaded_exactly(tmp_path, fx):
    raw = fx.make_idx(tmp_path / "mnist")
    for split in ("train", "test"):
        data = load_dataset(fx.cfg("mnist", root=str(tmp_path / "mnist")), split)
        images, labels = raw[split]
        assert data.images.dtype == torch.uint8 and data.images.shape == (len(images), 1, 28, 28)
        assert np.array_equal(data.images[:, 0].numpy(), images)
        assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
        assert data.class_names == [str(d) for d in range(10)] and data.split == split and data.name == "mnist"


def test_resize_and_rgb_match_pillow(tmp_path, fx):
    raw = fx.make_idx(tmp_path / "f", n_train=5)
    data = load_dataset(fx.cfg("fashion-mnist", root=str(tmp_path / "f"), resolution=32, channels=3))
    assert data.images.shape == (5, 3, 32, 32)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    for i, img in enumerate(raw["train"][0]):
        ref = np.asarray(Image.fromarray(img).resize((32, 32), Image.Resampling.LANCZOS, reducing_gap=3.0))
        for c in range(3):
            assert np.array_equal(data.images[i, c].numpy(), ref)


def test_bad_magic_truncated_and_corrupt_files_are_data_errors(tmp_path, fx):
    folder = tmp_path / "m"
    fx.make_idx(folder)
    # labels where images belong: magic 0x801 instead of 0x803
    (folder / "train-images-idx3-ubyte.gz").write_bytes((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="magic number 0x00000801, expected 0x00000803"):
        load_dataset(fx.cfg("mnist", root=str(folder)))

    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:  # header says 12 images, data holds 2
        f.write(struct.pack(">IIII", 0x803, 12, 28, 28) + bytes(2 * 28 * 28))
    with pytest.raises(DataError, match="holds"):
        load_dataset(fx.cfg("mnist", root=str(folder)))

    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_dataset(fx.cfg("mnist", root=str(folder)))


def test_label_count_mismatch(tmp_path, fx):
    folder = tmp_path / "m"
    fx.make_idx(folder)
    fx.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="12 images but 3 labels"):
        load_dataset(fx.cfg("mnist", root=str(folder)))


def test_second_load_reads_the_prepared_cache(tmp_path, fx, monkeypatch):
    folder = tmp_path / "m"
    fx.make_idx(folder)
    c = fx.cfg("mnist", root=str(folder), resolution=16)
    first = load_dataset(c)
    path = prepared_file(c)
    assert path.is_file() and path.name.startswith("mnist-train-16-1-") and path.parent.name == "prepared"

    def boom(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(idx_module, "read_idx", boom)
    assert torch.equal(load_dataset(c).images, first.images)
    # RGB of a grey dataset shares the 1-channel cache and is replicated in memory
    rgb = load_dataset(fx.cfg("mnist", root=str(folder), resolution=16, channels=3))
    assert torch.equal(rgb.images[:, 2], first.images[:, 0])
    monkeypatch.undo()

    # replacing a raw file changes its identity: the split is decoded again
    fx.make_idx(folder, seed=1)
    monkeypatch.setattr(idx_module, "read_idx", boom)
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(c)


def test_limit_split_and_option_validation(tmp_path, fx):
    folder = tmp_path / "m"
    raw = fx.make_idx(folder)
    data = load_dataset(fx.cfg("mnist", root=str(folder), limit=5))
    assert len(data) == 5 and np.array_equal(data.images[:, 0].numpy(), raw["train"][0][:5])
    assert data.labels.tolist() == raw["train"][1][:5].tolist()
    assert len(load_dataset(fx.cfg("mnist", root=str(folder), limit=1000))) == 12
    with pytest.raises(ConfigError, match="limit"):
        load_dataset(fx.cfg("mnist", root=str(folder), limit=0))
    with pytest.raises(ConfigError, match="channels"):
        load_dataset(fx.cfg("mnist", root=str(folder), channels=2))
    with pytest.raises(ConfigError, match="resolution"):
        load_dataset(fx.cfg("mnist", root=str(folder), resolution=0))
    with pytest.raises(DataError, match="no split 'val'"):
        load_dataset(fx.cfg("mnist", root=str(folder)), "val")
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'"):
        load_dataset(fx.cfg("svhn"))
