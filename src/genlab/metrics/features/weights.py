"""Pretrained weights files of the feature extractors (Inception, DINOv2, CLIP): where they are looked for and how
a download is checked. The search order is the same for every extractor: the file given on the command line, the
extractor's environment variable, the cache (``cache_dir()/weights/<file>``), then a download that only leaves a
file behind when its checksum is the published one. A download reports its progress (bytes) through
``genlab.metrics.work_progress`` (the CLI shows a bar with the time left).

Two environment variables: ``GENLAB_OFFLINE=1`` never downloads (the one-line error says where to put the file);
``GENLAB_WEIGHTS_MIRROR=URL`` fetches ``URL/<file name>`` instead of the official URL (a local mirror for
machines without internet access); the published checksums are checked all the same."""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from genlab.downloads import copy_with_progress
from genlab.errors import GenlabError
from genlab.io import atomic_write, cache_dir
from genlab.metrics.work_progress import active as progress_active
from genlab.metrics.work_progress import report

log = logging.getLogger("genlab.metrics")

DOWNLOAD_TIMEOUT_S = 30
OFFLINE_ENV = "GENLAB_OFFLINE"
MIRROR_ENV = "GENLAB_WEIGHTS_MIRROR"


def offline() -> bool:
    """``$GENLAB_OFFLINE`` set to anything but "", "0" or "false": no download is attempted."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def source_url(url: str) -> str:
    """The official ``url``, or ``$GENLAB_WEIGHTS_MIRROR/<its file name>`` when a mirror is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def weights_cache_path(file: str) -> Path:
    return cache_dir() / "weights" / file


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_checked(url: str, dest: Path, check: Callable[[str, int], str | None], what: str) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar (bytes, speed, ETA) on stderr.
    ``check(sha256 hex, size)`` returns None for the published file,
    else what was expected (then nothing is left behind and the GenlabError says so)."""

    url = source_url(url)
    task = f"downloading {dest.name}"

    def write(f) -> None:
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
            if progress_active():  # inside a command's metric bars: the download is one more task there
                total = int(getattr(r, "headers", {}).get("Content-Length") or 0)
                size = 0
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
                    report(task, size, total, "bytes")
            else:  # a bar of its own (bytes, speed, ETA) on stderr
                size = copy_with_progress(r, f, dest.name, h.update)
        expected = check(h.hexdigest(), size)
        if expected is not None:
            raise GenlabError(f"downloaded {url} ({size} bytes) has sha256 {h.hexdigest()[:16]}..., "
                              f"expected {expected}")

    log.info("downloading %s from %s", what, url)
    return atomic_write(dest, write)


def find_weights(path: str | os.PathLike | None, *, option: str, env: str, file: str, url: str, what: str,
                 download: Callable[[Path], Path] | None) -> Path:
    """The weights file to use: ``path`` (from ``option``), ``$env``, the cache, then ``download(cache path)``
    when given; else one GenlabError naming the file, the URL and the three ways to provide it."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GenlabError(f"{option} {p}: no such file")
        return p
    value = os.environ.get(env)
    if value:
        p = Path(value).expanduser()
        if not p.is_file():
            raise GenlabError(f"${env}={value}: no such file")
        return p
    cached = weights_cache_path(file)
    if cached.is_file():
        return cached
    why = "downloads are off"
    if download is not None and offline():
        why = f"downloads are off (${OFFLINE_ENV})"
    elif download is not None:
        try:
            return download(cached)
        except (OSError, urllib.error.URLError, GenlabError) as e:
            why = f"the download failed ({e})"
    raise GenlabError(f"{what} {file} not found and {why}. Download {url} and put it at {cached}, or pass "
                      f"{option} PATH, or set ${env}. Offline, `--features classifier` (without fd_dinov2 or cmmd "
                      "in --metrics) works without it.")
