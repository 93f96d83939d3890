"""Atomic file writes: a crash never leaves a half-written file in place of a good one.

A write goes to a temporary file next to its target (a name unique to this process: pid + random suffix),
is flushed and fsynced, renamed over the target, and the folder is fsynced so the rename itself survives a
power cut. The temporary file is created with mode 0o666, which the kernel narrows by the umask, so written
files get the usual permissions without anyone reading (and briefly changing) the process-wide umask.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlab import signals

#: suffix of atomic_write's temporary files (``.NAME.<pid>.<random>.tmp`` next to the target)
TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """A temporary name next to ``path``, unique to this process and this call."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}"


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, empty folder in ``parent`` with a name unique to this process and call, mode 0o777 narrowed by
    the umask (``tempfile.mkdtemp`` makes 0o700, and fixing that up would need the umask)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{prefix}{os.getpid()}.{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
        except FileExistsError:
            continue
        return path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself is already synced
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, fsync it, rename it over ``path`` and fsync
    the folder. On any failure the temporary file is removed and ``path`` keeps its old contents; an OSError
    is raised again with ``path`` as its filename (a full disk names the file it could not write). After a
    Ctrl-C (:mod:`genlab.signals`) nothing is renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        signals.check()  # a Ctrl-C whose KeyboardInterrupt was swallowed on the way commits nothing
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None and not e.filename:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data), mode="wb")


class _WriteRecorder:
    """A file object that remembers the OSError of a failed write (torch.save reports it as an opaque
    RuntimeError of its zip writer)."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically; a failed write (a full disk, a file-size limit) raises its OSError."""
    import torch

    def write(f: Any) -> None:
        rec = _WriteRecorder(f)
        try:
            torch.save(obj, rec)
        except RuntimeError:
            if rec.error is not None:
                raise rec.error from None
            raise

    return atomic_write(path, write)


def content_digest(obj: Any) -> str:
    """A sha256 of what ``obj`` holds (nested dicts, lists and tuples of tensors, numbers, strings), the same
    before a ``torch.save`` and after a ``torch.load`` of it on any device: checkpoints and caches carry it, so a
    flipped bit in a file (which ``torch.load`` does not notice: it skips the zip's CRC) is caught on load."""
    import hashlib

    import torch

    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"T{x.dtype}{tuple(x.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(f"D{len(x)}:".encode())
            for k, v in sorted(x.items(), key=lambda kv: repr(kv[0])):
                h.update(repr(k).encode() + b"=")
                walk(v)
        elif isinstance(x, (list, tuple)):
            h.update(f"{'L' if isinstance(x, list) else 'U'}{len(x)}:".encode())
            for v in x:
                walk(v)
        else:
            h.update(f"V{type(x).__name__}:{x!r};".encode())

    walk(obj)
    return h.hexdigest()


def cache_dir() -> Path:
    """genlab's cache: ``$GENLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/genlab``, else ``~/.cache/genlab``."""
    env = os.environ.get("GENLAB_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "genlab" if xdg else Path.home() / ".cache" / "genlab"
