"""image-folder: layouts, formats, corrupt files, strict mode, splits, captions and caching."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import DataWarning, load_dataset, prepared_file
from genlab.data import folder as folder_module
from genlab.errors import DataError


def _save(path, im, fmt=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **kw)


def make_labeled(root):
    """cats: RGBA png (left half transparent, right half red), 16-bit grey png, webp; dogs: bmp, wide jpg,
    a truncated jpg and a garbage png; plus files that are not images."""
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[:, 20:] = (255, 0, 0, 255)
    _save(root / "cats" / "a_rgba.png", Image.fromarray(rgba))
    _save(root / "cats" / "b_grey16.png", Image.fromarray(np.full((10, 10), 65535, dtype=np.uint16)))
    _save(root / "cats" / "sub" / "c.webp", Image.new("RGB", (30, 30), (0, 200, 0)), "WEBP", lossless=True)
    _save(root / "dogs" / "a.bmp", Image.new("L", (12, 12), 128))
    _save(root / "dogs" / "b_wide.jpg", Image.new("RGB", (100, 60), (0, 0, 250)))
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buf, "JPEG")
    (root / "dogs" / "c_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "dogs" / "d_garbage.png").write_bytes(b"not a png at all")
    (root / "dogs" / ".hidden.png").write_bytes(b"ignored")
    (root / "notes.txt").write_text("not an image")
    (root / "empty_class").mkdir()


def test_labeled_folder_formats_and_one_warning_for_bad_files(tmp_path, fx):
    make_labeled(tmp_path / "imgs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(fx.cfg("image-folder", root=str(tmp_path / "imgs"), resolution=8, channels=3))
    bad = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(bad) == 1 and "skipped 2 unreadable" in str(bad[0].message)
    assert "c_truncated.jpg" in str(bad[0].message) and "d_garbage.png" in str(bad[0].message)
    assert data.class_names == ["cats", "dogs"] and data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.images.shape == (5, 3, 8, 8) and data.images.dtype == torch.uint8
    rgba = data.images[0].numpy()
    assert (rgba[:, :, 0] >= 250).all()  # transparent half composited on white
    assert (rgba[0, :, 7] >= 245).all() and (rgba[1:, :, 7] <= 10).all()  # opaque red half
    assert (data.images[1] == 255).all()  # 16-bit white stays white
    assert data.images[2, 1].float().mean() > 190  # green webp in a nested folder
    assert (data.images[3] == 128).all()  # grey bmp -> RGB
    assert data.images[4, 2].float().mean() > 240  # wide jpeg, centre-cropped


def test_strict_names_the_first_bad_file(tmp_path, fx):
    make_labeled(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"cannot read image dogs/c_truncated.jpg"):
        load_dataset(fx.cfg("image-folder", root=str(tmp_path / "imgs"), resolution=8, channels=3, strict=True))


def test_flat_folder_is_unlabeled_and_grey(tmp_path, fx):
    for i in range(3):
        _save(tmp_path / "flat" / f"{i}.png", Image.new("RGB", (9, 7), (i * 100, 0, 0)))
    data = load_dataset(fx.cfg("image-folder", root=str(tmp_path / "flat"), resolution=4, channels=1))
    assert data.labels is None and data.class_names == [] and not data.labeled
    assert data.images.shape == (3, 1, 4, 4)
    assert abs(int(data.images[2, 0, 0, 0]) - 60) <= 1  # Pillow's luma of (200, 0, 0)


def test_empty_missing_and_unreadable_folders(tmp_path, fx):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no images in"):
        load_dataset(fx.cfg("image-folder", root=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(fx.cfg("image-folder", root=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="needs a folder"):
        load_dataset(fx.cfg("image-folder"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of the 1 image files.*x.jpg"):
        load_dataset(fx.cfg("image-folder", root=str(tmp_path / "bad")))


def test_test_split_uses_training_classes(tmp_path, fx):
    root = tmp_path / "imgs"
    for cls, value in (("a", 10), ("b", 20), ("c", 30)):
        _save(root / cls / "1.png", Image.new("L", (4, 4), value))
    c = fx.cfg("image-folder", root=str(root), resolution=4, channels=1)
    with pytest.raises(DataError, match="has no test split"):
        load_dataset(c, "test")
    _save(root / "test" / "c" / "9.png", Image.new("L", (4, 4), 30))
    train, test = load_dataset(c), load_dataset(c, "test")
    assert train.class_names == test.class_names == ["a", "b", "c"] and len(train) == 3  # test/ is not a class
    assert test.labels.tolist() == [2] and int(test.images[0, 0, 0, 0]) == 30
    _save(root / "test" / "zzz" / "1.png", Image.new("L", (4, 4), 0))
    with pytest.raises(DataError, match="zzz has no counterpart"):
        load_dataset(c, "test")


def test_captions_text_and_json(tmp_path, fx):
    root = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        for i in range(2):
            _save(root / cls / f"{i}.png", Image.new("RGB", (4, 4)))
    (root / "captions.txt").write_text("# path<TAB>caption\ncat/0.png\ta black cat\n\ndog/1.png\ta dog, sleeping\n")
    with pytest.warns(DataWarning, match="2 image\\(s\\) have no caption"):
        data = load_dataset(fx.cfg("image-folder", root=str(root), resolution=4, channels=3, captions="captions.txt"))
    assert data.captions == ["a black cat", "cat", "dog", "a dog, sleeping"]
    path = tmp_path / "caps.json"
    path.write_text(json.dumps({f"{c}/{i}.png": f"{c} {i}" for c in ("cat", "dog") for i in range(2)}))
    data = load_dataset(fx.cfg("image-folder", root=str(root), resolution=4, channels=3, captions=str(path), limit=3))
    assert data.captions == ["cat 0", "cat 1", "dog 0"]
    (root / "bad.txt").write_text("cat/0.png a cat without a tab\n")
    with pytest.raises(DataError, match="bad.txt:1: expected"):
        load_dataset(fx.cfg("image-folder", root=str(root), captions="bad.txt"))


def test_cache_reuse_invalidation_and_partial_limit(tmp_path, fx, monkeypatch):
    make_labeled(tmp_path / "imgs")
    c = fx.cfg("image-folder", root=str(tmp_path / "imgs"), resolution=8, channels=3)
    with pytest.warns(DataWarning):
        first = load_dataset(c)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_module, "decode_all", boom)
    with pytest.warns(DataWarning, match="skipped 2"):  # the warning is repeated from the cache
        assert torch.equal(load_dataset(c).images, first.images)
    _save(tmp_path / "imgs" / "dogs" / "a.bmp", Image.new("L", (12, 12), 7))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(c)
    monkeypatch.undo()

    limited = fx.cfg("image-folder", root=str(tmp_path / "imgs"), resolution=8, channels=3, limit=2)
    part = load_dataset(limited)
    assert len(part) == 2 and prepared_file(limited).is_file() and prepared_file(limited) != prepared_file(c)
    assert torch.equal(part.images, first.images[:2])
