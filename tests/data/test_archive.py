"""Archives are read in place and refuse members that would escape on extraction."""
from __future__ import annotations

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
