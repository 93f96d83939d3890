"""Flowers-102: 102flowers.tgz + imagelabels.mat + setid.mat, splits in setid order, 102 class names."""
from __future__ import annotations

import numpy as np
import pytest

from genlab.data import dataset_info, load_dataset
from genlab.errors import DataError


def test_splits_labels_and_pixels(tmp_path, fx):
    meta = fx.make_flowers(tmp_path / "fl")
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        data = load_dataset(fx.cfg("flowers102", root=str(tmp_path / "fl"), resolution=16, channels=3), split)
        ids = meta["splits"][key]
        assert data.images.shape == (len(ids), 3, 16, 16)
        assert data.labels.tolist() == [int(meta["labels"][i - 1]) - 1 for i in ids]
        for k, i in enumerate(ids):  # solid-colour JPEGs keep their colour through crop and resize
            mean = data.images[k].float().mean(dim=(1, 2)).numpy()
            assert np.abs(mean - np.array(meta["colors"][i - 1])).max() < 6, (split, i)
    assert data.num_classes == 102 and data.class_names[0] == "pink primrose"


def test_grey_and_bad_split(tmp_path, fx):
    fx.make_flowers(tmp_path / "fl")
    data = load_dataset(fx.cfg("flowers102", root=str(tmp_path / "fl"), resolution=8, channels=1), "val")
    assert data.images.shape == (2, 1, 8, 8)
    with pytest.raises(DataError, match="choose one of: train, val, test"):
        load_dataset(fx.cfg("flowers102", root=str(tmp_path / "fl")), "validation")


def test_out_of_range_id_and_missing_photo_are_named(tmp_path, fx):
    from scipy.io import savemat

    folder = tmp_path / "fl"
    fx.make_flowers(folder)  # 9 photos, 9 labels
    c = fx.cfg("flowers102", root=str(folder), resolution=8, channels=3)
    savemat(folder / "setid.mat", {"trnid": np.array([[1, 10]]), "valid": np.array([[2]]), "tstid": np.array([[3]])})
    with pytest.raises(DataError, match=r"image ids outside 1\.\.9"):
        load_dataset(c)
    savemat(folder / "imagelabels.mat", {"labels": np.ones((1, 10))})  # id 10 now labelled, but not in the archive
    with pytest.raises(DataError, match="lacks 1 photo.*image_00010.jpg"):
        load_dataset(c)


def test_class_names_are_the_102_standard_ones():
    info = dataset_info("flowers102")
    assert len(info.class_names) == 102 == len(set(info.class_names)) == info.num_classes
    assert info.class_names[-1] == "blackberry lily" and info.splits == ("train", "val", "test")
