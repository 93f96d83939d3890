"""CIFAR-10 from cifar-10-python.tar.gz: batch order, pixel layout, class names, safe unpickling."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from genlab.data import load_dataset
from genlab.errors import DataError


def test_train_and_test_batches_in_order(tmp_path, fx):
    batches = fx.make_cifar(tmp_path / "c", per_batch=3)
    train = load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=32, channels=3))
    assert train.images.shape == (15, 3, 32, 32)
    data = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(train.images.numpy(), data.reshape(-1, 3, 32, 32))
    assert train.labels.tolist() == [x for i in range(1, 6) for x in batches[f"data_batch_{i}"][1]]
    assert train.class_names[:3] == ["airplane", "automobile", "bird"] and train.num_classes == 10
    test = load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=32, channels=3), "test")
    assert np.array_equal(test.images.numpy(), batches["test_batch"][0].reshape(-1, 3, 32, 32))


def test_grey_and_resized_match_pillow(tmp_path, fx):
    batches = fx.make_cifar(tmp_path / "c", per_batch=2)
    data = load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=12, channels=1), "test")
    assert data.images.shape == (2, 1, 12, 12)
    for i, row in enumerate(batches["test_batch"][0]):
        rgb = Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0))
        ref = rgb.convert("L").resize((12, 12), Image.Resampling.LANCZOS, reducing_gap=3.0)
        assert np.array_equal(data.images[i, 0].numpy(), np.asarray(ref))


class _Evil:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_pickles_cannot_run_code(tmp_path, fx, capsys):
    def evil(tar):
        fx.tar_add(tar, "cifar-10-batches-py/data_batch_1", pickle.dumps({b"data": _Evil()}, protocol=2))

    fx.make_cifar(tmp_path / "c", per_batch=1, extra=evil)  # a later member with the same name wins
    with pytest.raises(DataError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=32, channels=3))
    assert "must not run" not in capsys.readouterr().out


def test_missing_batch_is_named(tmp_path, fx):
    import tarfile

    folder = tmp_path / "c"
    folder.mkdir()
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        fx.tar_add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": [b"a"]}, protocol=2))
    with pytest.raises(DataError, match="lacks test_batch"):
        load_dataset(fx.cfg("cifar10", root=str(folder), resolution=32, channels=3), "test")
