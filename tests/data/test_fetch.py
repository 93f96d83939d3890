"""Locating raw files (lookup order), downloading from a mirror, checksums and the offline error."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from genlab.data import DATASETS, RemoteFile, dataset_info, fetch, load_dataset, prepare_dataset
from genlab.errors import DataError
from genlab.io import cache_dir

MNIST_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download_verifies_and_is_done_once(tmp_path, fx, serve):
    raw = fx.make_idx(tmp_path / "published")
    server = serve("mnist", tmp_path / "published")
    assert dataset_info("mnist").files[0][1] == f"{server.url}/mnist/train-images-idx3-ubyte.gz"
    data = load_dataset(fx.cfg("mnist", download=True))
    assert np.array_equal(data.images[:, 0].numpy(), raw["train"][0])
    target = cache_dir() / "datasets" / "mnist"
    assert sorted(os.listdir(target)) == sorted(MNIST_FILES)  # no temporary files left
    assert sorted(server.requests) == sorted(f"/mnist/{f}" for f in MNIST_FILES)
    assert prepare_dataset("mnist") == target
    load_dataset(fx.cfg("mnist", download=True), "test")
    assert len(server.requests) == 4


def test_checksum_mismatch_deletes_the_download(tmp_path, fx, serve, monkeypatch):
    fx.make_idx(tmp_path / "published")
    serve("mnist", tmp_path / "published")
    source = DATASETS.get("mnist")
    bad = tuple(RemoteFile(f.filename, "0" * 32) if f.filename.startswith("t10k-images") else f for f in source.files)
    monkeypatch.setattr(source, "files", bad)
    with pytest.raises(DataError, match=r"checksum mismatch for t10k-images-idx3-ubyte.gz .*expected md5 0{32}"):
        prepare_dataset("mnist")
    target = cache_dir() / "datasets" / "mnist"
    assert "t10k-images-idx3-ubyte.gz" not in os.listdir(target)
    assert not [n for n in os.listdir(target) if n.startswith(".")]  # nor its temporary file


def test_network_errors_become_data_errors(tmp_path, fx, serve, monkeypatch):
    fx.make_idx(tmp_path / "published")
    server = serve("mnist", tmp_path / "published")
    (server.root / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"HTTP 404.*train-labels-idx1-ubyte.gz") as err:
        prepare_dataset("mnist")
    assert "Put these files" in str(err.value)
    monkeypatch.setenv("GENLAB_MIRROR", "http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(DataError, match="could not download http://127.0.0.1:9/mnist/"):
        prepare_dataset("mnist")


def test_offline_without_a_copy_names_every_file_and_the_apt_package(fx):
    with pytest.raises(DataError) as err:
        load_dataset(fx.cfg("fashion-mnist", download=False))
    msg = str(err.value)
    for name in MNIST_FILES:
        assert name in msg
    assert "downloading is off" in msg
    assert str(cache_dir() / "datasets" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        prepare_dataset("cifar10", download=False)


def test_lookup_order_root_then_env_then_cache_then_system(tmp_path, fx, monkeypatch):
    places = {
        "root": tmp_path / "explicit",
        "env_named": tmp_path / "env" / "mnist",
        "env": tmp_path / "env",
        "cache": cache_dir() / "datasets" / "mnist",
        "system": tmp_path / "system" / "mnist",
    }
    firsts = {}
    for seed, (key, folder) in enumerate(places.items()):
        firsts[key] = fx.make_idx(folder, n_train=2, n_test=1, seed=seed)["train"][0][0]
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path / "env"))

    def loaded(**kw):
        return load_dataset(fx.cfg("mnist", limit=1, **kw)).images[0, 0].numpy()

    assert prepare_dataset("mnist", root=places["root"], download=False, verify=False) == places["root"]
    assert np.array_equal(loaded(root=str(places["root"])), firsts["root"])
    assert prepare_dataset("mnist", download=False, verify=False) == places["env_named"]
    assert np.array_equal(loaded(), firsts["env_named"])
    for key, nxt in (("env_named", "env"), ("env", "cache"), ("cache", "system")):
        for f in MNIST_FILES:
            (places[key] / f).unlink()
        assert prepare_dataset("mnist", download=False, verify=False) == places[nxt]
        assert np.array_equal(loaded(), firsts[nxt])
    # an explicit root is exclusive: when it lacks the files nothing else is used
    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        prepare_dataset("mnist", root=tmp_path / "empty", download=False)
    assert fetch.candidate_dirs("mnist", tmp_path / "r") == [tmp_path / "r", tmp_path / "r" / "mnist"]


def test_explicit_root_downloads_into_root(tmp_path, fx, serve):
    fx.make_idx(tmp_path / "published")
    serve("mnist", tmp_path / "published")
    root = tmp_path / "mine"
    assert prepare_dataset("mnist", root=root) == root
    assert sorted(os.listdir(root)) == sorted(MNIST_FILES)


def test_local_copy_with_other_checksum_is_refused_unless_verify_is_off(tmp_path, fx, caplog):
    fx.make_idx(tmp_path / "m")
    path, digest = tmp_path / "m" / MNIST_FILES[0], fx.md5(tmp_path / "m" / MNIST_FILES[0])
    with pytest.raises(DataError) as e:
        prepare_dataset("mnist", root=tmp_path / "m", download=False)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and digest in msg and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in msg
    assert "data.verify=false" in msg
    with pytest.raises(DataError, match=digest):  # the loader refuses too: nothing is decoded or cached
        load_dataset(fx.cfg("mnist", root=str(tmp_path / "m"), verify=True))
    assert not (cache_dir() / "prepared").exists()
    with caplog.at_level(logging.WARNING, logger="genlab.data"):
        assert prepare_dataset("mnist", root=tmp_path / "m", download=False, verify=False) == tmp_path / "m"
    assert f"has md5 {digest}, not the published f68b3c2dcbeaaa9fbdd348bbdeb94873" in caplog.text


def test_mnist_files_are_not_read_as_fashion_mnist(tmp_path, fx, serve):
    """The two datasets' files have the same names: MNIST's (here: files with MNIST's published md5s) in a
    folder named as fashion-mnist's root are refused, and the fashion-mnist split cached from them is not
    reused by a verifying load."""
    fx.make_idx(tmp_path / "published")
    serve("mnist", tmp_path / "published")  # the served files become "MNIST's published ones"
    mnist_md5 = {f.filename: f.md5 for f in DATASETS.get("mnist").files}
    assert mnist_md5[MNIST_FILES[0]] == fx.md5(tmp_path / "published" / MNIST_FILES[0])
    unverified = load_dataset(fx.cfg("fashion-mnist", root=str(tmp_path / "published")))
    assert len(unverified) == 12
    with pytest.raises(DataError, match=f"fashion-mnist: .*{MNIST_FILES[0]} has md5 {mnist_md5[MNIST_FILES[0]]}"):
        load_dataset(fx.cfg("fashion-mnist", root=str(tmp_path / "published"), verify=True))
