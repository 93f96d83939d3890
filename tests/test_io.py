"""Atomic writes: the file appears whole or not at all, with the umask's permissions, durably, and no write
changes the process-wide umask or leaves a temporary file behind."""
from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import threading
from pathlib import Path

import pytest
import torch

from genlab.io import (
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    cache_dir,
    make_temp_dir,
    temp_name,
)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_permissions_follow_the_umask(mask, mode, umask, tmp_path):
    umask(mask)
    for write in (lambda p: atomic_write_text(p, "x"), lambda p: atomic_torch_save({"a": torch.ones(2)}, p)):
        p = write(tmp_path / "f")
        assert stat.S_IMODE(p.stat().st_mode) == mode, oct(p.stat().st_mode)
    folder = make_temp_dir(tmp_path, ".staged-")  # export's staging folder
    assert stat.S_IMODE(folder.stat().st_mode) == mode | 0o111 & ~mask and folder.name.startswith(".staged-")


def test_no_write_reads_or_changes_the_umask(monkeypatch, umask, tmp_path):
    umask(0o027)

    def forbidden(_mask):
        raise AssertionError("os.umask called: it changes the umask of every thread")

    monkeypatch.setattr(os, "umask", forbidden)
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_torch_save({"w": torch.arange(3)}, tmp_path / "c.pt")
    monkeypatch.undo()
    assert os.umask(0o027) == 0o027


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = atomic_write_text(tmp_path / "config.yaml", "old\n")

    def half_then_fail(f):
        f.write("new, half wri")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        atomic_write(target, half_then_fail, mode="w")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_temporary_names_are_unique_and_concurrent_writers_never_collide(tmp_path):
    target = tmp_path / "status.json"
    names = {temp_name(target) for _ in range(50)}
    assert len(names) == 50 and all(f".{os.getpid()}." in n.name and n.parent == tmp_path for n in names)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for _ in range(20):
                atomic_write_text(target, f"writer {i}\n" * 100)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    text = target.read_text()
    assert text in {f"writer {i}\n" * 100 for i in range(6)}  # one writer's whole file, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fsynced descriptors")
def test_the_file_and_its_folder_are_fsynced_after_the_rename(monkeypatch, tmp_path):
    synced: list[str] = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    target = atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    assert len(synced) == 2, synced
    assert Path(synced[0]).name.startswith(".f.txt.") and synced[0].endswith(".tmp")  # the data, before the rename
    assert Path(synced[1]) == target.parent.resolve()  # the folder, after it


def test_a_file_size_limit_is_an_oserror_naming_the_file_and_nothing_is_left(tmp_path):
    """RLIMIT_FSIZE for real (soft limit only, restored): torch.save's opaque RuntimeError becomes EFBIG."""
    target = atomic_torch_save({"w": torch.zeros(10)}, tmp_path / "ckpt.pt")
    before = target.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write() instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, hard))
    try:
        with pytest.raises(OSError) as e:
            atomic_torch_save({"w": torch.zeros(100_000)}, target)  # 400 kB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert e.value.errno == errno.EFBIG and e.value.filename == str(target)
    assert e.value.strerror == os.strerror(errno.EFBIG)  # what the CLI's one line says
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_missing_folders_are_made_and_the_bytes_land_whole(tmp_path):
    data = bytes(range(256)) * 3
    target = atomic_write_bytes(tmp_path / "a" / "b" / "c.bin", data)
    assert target == tmp_path / "a" / "b" / "c.bin" and target.read_bytes() == data
    folder = make_temp_dir(tmp_path / "x" / "y", ".staged-")
    assert folder.is_dir() and folder.parent == tmp_path / "x" / "y" and list(folder.iterdir()) == []


def test_a_temporary_folder_name_taken_already_is_skipped(monkeypatch, tmp_path):
    """A name collision (forced: the random suffix repeats) makes a new name, never reuses the folder."""
    taken = tmp_path / f".staged-{os.getpid()}.aaaa"
    taken.mkdir()
    (taken / "other.txt").write_text("someone else's")
    suffixes = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr("secrets.token_hex", lambda _n: next(suffixes))
    folder = make_temp_dir(tmp_path, ".staged-")
    assert folder == tmp_path / f".staged-{os.getpid()}.bbbb" and folder.is_dir()
    assert (taken / "other.txt").read_text() == "someone else's"


def test_the_cache_folder_follows_genlab_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("GENLAB_CACHE_DIR", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "genlab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "genlab"
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
