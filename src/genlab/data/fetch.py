"""Finding raw dataset files on disk, downloading the missing ones and verifying checksums.

Lookup order for a named dataset's raw files (the first folder holding all of them wins):

1. an explicit ``root`` (``data.root`` / ``--root``): ``root`` itself, then ``root/<name>``. When a root is
   given nothing else is searched, and a download (if allowed) goes into ``root``.
2. ``$GENLAB_DATA_DIR/<name>``, then ``$GENLAB_DATA_DIR`` itself.
3. the user cache, ``genlab.io.cache_dir()/datasets/<name>``.
4. system locations, ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` installs there).
5. a download into the user cache, only when downloading is allowed.

Downloads show a progress bar (bytes, speed, ETA; ``genlab.downloads``), go to a temporary file next to the
target, are checked against the published MD5 and only then renamed into place; a mismatch deletes the file and
raises ``DataError``.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.downloads import copy_with_progress
from genlab.errors import DataError
from genlab.io import atomic_write, cache_dir

if TYPE_CHECKING:
    from genlab.data.sources import DatasetSource, RemoteFile

log = logging.getLogger("genlab.data")

DATA_DIR_ENV = "GENLAB_DATA_DIR"
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation, not for the whole file


def user_data_dir(name: str) -> Path:
    return cache_dir() / "datasets" / name


def candidate_dirs(name: str, root: Path | None) -> list[Path]:
    """The folders searched for ``name``'s raw files, in lookup order."""
    if root is not None:
        root = Path(root).expanduser()
        return [root, root / name]
    dirs: list[Path] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs += [Path(env).expanduser() / name, Path(env).expanduser()]
    dirs.append(user_data_dir(name))
    dirs += [d / name for d in SYSTEM_DATA_DIRS]
    return dirs


def locate(name: str, filenames: Sequence[str], root: Path | None) -> Path | None:
    for folder in candidate_dirs(name, root):
        if all((folder / f).is_file() for f in filenames):
            return folder
    return None


def file_identity(paths: Sequence[Path]) -> list[Any]:
    """Path, size and modification time of each file: cheap, and changes whenever a file is replaced. A link that
    points nowhere is identified by its target (decoding skips it like an unreadable image)."""
    out: list[Any] = []
    for p in paths:
        try:
            st = p.stat()
        except OSError as e:
            if p.is_symlink():
                out.append([str(p), "dangling link", os.readlink(p)])
                continue
            raise DataError(f"cannot read {p}: {e.strerror or e}") from None
        out.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return out


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_local(source: DatasetSource, folder: Path, files: Sequence[RemoteFile] | None = None,
                 verify: bool = True) -> None:
    """Check local copies against the published checksums (and the known faithful repacks, ``also_md5``).

    A mismatch raises ``DataError`` naming the file, both checksums and the fix: a file with the dataset's name
    but other contents is most often another dataset's (MNIST's and Fashion-MNIST's files have the same names).
    With ``verify=False`` (``data.verify=false``) it is only logged, and the file is used.
    """
    for f in source.files if files is None else files:
        path = folder / f.filename
        digest = md5sum(path)
        if digest == f.md5 or digest in f.also_md5:
            continue
        known = f"the published {f.md5}" + (f" (or a known repack: {', '.join(f.also_md5)})" if f.also_md5 else "")
        if verify:
            raise DataError(
                f"{source.name}: {path} has md5 {digest}, not {known}: it is not {source.name}'s file (another "
                f"dataset's file with the same name?); put the official file there ({source.url(f)}), or set "
                "data.verify=false to use it anyway"
            )
        log.warning("%s: %s has md5 %s, not %s; using it anyway (data.verify=false)", source.name, path, digest, known)


def missing_files_message(source: DatasetSource, root: Path | None, why: str) -> str:
    files = "; ".join(f"{f.filename} ({source.url(f)})" for f in source.files)
    if root is not None:
        where = f"{Path(root).expanduser()}"
    else:
        where = (
            f"{user_data_dir(source.name)} or ${DATA_DIR_ENV}/{source.name}, "
            "or pass the folder as data.root / --root"
        )
    msg = f"{source.name}: raw files not found ({why}). Put these files: {files} in {where}"
    if source.apt_package:
        dirs = " or ".join(str(d / source.name) for d in SYSTEM_DATA_DIRS)
        msg += (
            f"; or install the Debian package {source.apt_package} "
            f"(`apt-get install {source.apt_package}`, files in {dirs})"
        )
    return msg


class DownloadError(DataError):
    """The transfer itself failed (network, HTTP status, disk), as opposed to a checksum mismatch."""


def download_file(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` through a temporary file (``io.atomic_write``: removed on any failure); the MD5
    is verified before the file is renamed into place."""
    log.info("downloading %s -> %s", url, dest)

    def transfer(out) -> None:
        h = hashlib.md5(usedforsecurity=False)
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "genlab"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
                copy_with_progress(response, out, dest.name, h.update)
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError and timeouts are OSErrors
            if isinstance(e, urllib.error.HTTPError):
                reason = f"HTTP {e.code} {e.reason}"
            elif isinstance(e, urllib.error.URLError):
                reason = str(e.reason)
            else:
                reason = str(e) or type(e).__name__
            raise DownloadError(f"could not download {url}: {reason}") from None
        digest = h.hexdigest()
        if digest != md5:
            raise DataError(
                f"checksum mismatch for {dest.name} downloaded from {url}: expected md5 {md5}, got {digest}; "
                "the download was deleted (a broken mirror or a truncated transfer; try again)"
            )

    try:
        return atomic_write(dest, transfer)
    except OSError as e:  # the folder itself: creating, syncing or renaming into it
        raise DownloadError(f"cannot write to {dest.parent}: {e.strerror or e}") from None


def fetch(source: DatasetSource, root: Path | None, download: bool, verify: bool = True) -> Path:
    """Locate ``source``'s raw files (lookup order above), downloading the missing ones if allowed; local files
    are checked by :func:`verify_local` (``verify``: a mismatch is refused, else only logged)."""
    names = [f.filename for f in source.files]
    folder = locate(source.name, names, root)
    if folder is not None:
        verify_local(source, folder, verify=verify)
        return folder
    target = Path(root).expanduser() if root is not None else user_data_dir(source.name)
    if not download:
        raise DataError(missing_files_message(source, root, "downloading is off"))
    present = [f for f in source.files if (target / f.filename).is_file()]
    for f in source.files:
        if f in present:
            continue
        try:
            download_file(source.url(f), target / f.filename, f.md5)
        except DownloadError as e:
            raise DataError(f"{e}. {missing_files_message(source, root, 'download failed')}") from None
    verify_local(source, target, present, verify)
    return target
