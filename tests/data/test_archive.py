"""Archives are read in place and refuse members that would escape on extraction."""
from __future__ import annotations

import gzip
import tarfile

import pytest

from genlab.data import load_dataset
from genlab.data.archive import read_members
from genlab.errors import DataError


def _symlink(tar):
    info = tarfile.TarInfo("cifar-10-batches-py/link")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tar.addfile(info)


def _hardlink(tar):
    info = tarfile.TarInfo("cifar-10-batches-py/hard")
    info.type, info.linkname = tarfile.LNKTYPE, "cifar-10-batches-py/batches.meta"
    tar.addfile(info)


@pytest.mark.parametrize(
    "member, add",
    [
        ("../x", lambda fx: lambda tar: fx.tar_add(tar, "../x", b"x")),
        ("cifar-10-batches-py/../../x", lambda fx: lambda tar: fx.tar_add(tar, "cifar-10-batches-py/../../x", b"x")),
        ("/tmp/abs", lambda fx: lambda tar: fx.tar_add(tar, "/tmp/abs", b"x")),
        ("cifar-10-batches-py/link", lambda fx: _symlink),
        ("cifar-10-batches-py/hard", lambda fx: _hardlink),
    ],
)
def test_unsafe_members_are_refused_by_name(tmp_path, fx, member, add):
    fx.make_cifar(tmp_path / "c", per_batch=1, extra=add(fx))
    with pytest.raises(DataError, match=f"refusing member '{member}'"):
        load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=32, channels=3))


def test_fifo_member_refused_and_truncated_archive(tmp_path, fx):
    def fifo(tar):
        info = tarfile.TarInfo("pipe")
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)

    fx.make_cifar(tmp_path / "c", per_batch=1, extra=fifo)
    with pytest.raises(DataError, match="'pipe': not a regular file"):
        list(read_members(tmp_path / "c" / "cifar-10-python.tar.gz", lambda n: True))

    archive = tmp_path / "c" / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot read archive"):
        load_dataset(fx.cfg("cifar10", root=str(tmp_path / "c"), resolution=32, channels=3))


def test_a_member_larger_than_the_cap_is_refused_before_it_is_read(tmp_path, fx):
    fx.make_cifar(tmp_path / "c", per_batch=1)
    archive = tmp_path / "c" / "cifar-10-python.tar.gz"
    sizes = {m.name: m.size for m in tarfile.open(archive)}
    big = max(sizes, key=sizes.get)
    with pytest.raises(DataError) as e:
        list(read_members(archive, lambda n: True, max_bytes=sizes[big] - 1))
    assert f"refusing member '{big}': it declares {sizes[big]} bytes" in str(e.value)
    assert len(list(read_members(archive, lambda n: True, max_bytes=sizes[big]))) == len(sizes)


def test_a_lying_header_declaring_gigabytes_is_refused_by_the_loader(tmp_path, fx):
    """A header that declares 8 GiB for a CIFAR batch (no data follows): refused before any read."""
    folder = tmp_path / "c"
    folder.mkdir()
    info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    info.size = 8 << 30
    with gzip.open(folder / "cifar-10-python.tar.gz", "wb") as f:
        f.write(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)
    with pytest.raises(DataError) as e:
        load_dataset(fx.cfg("cifar10", root=str(folder), resolution=32, channels=3))
    msg = str(e.value)
    assert "'cifar-10-batches-py/data_batch_1'" in msg and str(8 << 30) in msg and "128.0 MiB" in msg
