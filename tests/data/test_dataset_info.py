"""The registry and dataset_info: names, classes, splits and published files."""
from __future__ import annotations

import re

import pytest

from genlab.data import DATASETS, dataset_info
from genlab.errors import ConfigError


def test_registry_names_and_info_fields():
    assert DATASETS.names() == ["cifar10", "fashion-mnist", "flowers102", "image-folder", "mnist"]
    for name in DATASETS.names():
        info = dataset_info(name)
        assert info.name == name and info.description and info.splits
        assert info.num_classes == len(info.class_names) and info.labeled == (info.num_classes > 0)
        for filename, url, md5 in info.files:
            assert url.endswith("/" + filename) and re.fullmatch(r"[0-9a-f]{32}", md5)
    cifar_url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert dataset_info("cifar10").files == (("cifar-10-python.tar.gz", cifar_url, "c58f30108f718f92721af3b95e74349a"),)
    fashion_base = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert dataset_info("fashion-mnist").files[0][1].startswith(fashion_base)
    assert dataset_info("mnist").class_names == tuple("0123456789")
    assert dataset_info("image-folder").files == () and not dataset_info("image-folder").labeled
    with pytest.raises(ConfigError, match="choose one of: cifar10, fashion-mnist"):
        dataset_info("imagenet")


def test_mirror_overrides_every_url(monkeypatch):
    monkeypatch.setenv("GENLAB_MIRROR", "http://mirror.example/data/")
    assert dataset_info("flowers102").files[1][1] == "http://mirror.example/data/flowers102/imagelabels.mat"
