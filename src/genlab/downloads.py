"""Copying a download's body to a file with a Rich progress bar: bytes done of the total, speed and ETA.

Datasets (``data/fetch.py``: CIFAR-10's 170 MB, Flowers-102's 330 MB) and pretrained weights
(``metrics/features/weights.py``) are downloaded through :func:`copy_with_progress`; the callers open the
connection, check the checksum and write atomically. The bar goes to stderr, so a command's output stays clean.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from genlab.progress import Progress

CHUNK_BYTES = 1 << 20


def content_length(response: Any) -> int | None:
    """The body's size from the Content-Length header, None when the server does not say."""
    value = getattr(response, "headers", {}).get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def copy_with_progress(response: Any, out: IO[bytes], what: str, on_chunk: Callable[[bytes], None] | None = None,
                       console: Console | None = None) -> int:
    """Read ``response`` (a file-like HTTP body) to its end into ``out`` in 1 MiB chunks, passing each chunk to
    ``on_chunk`` (e.g. a hash's update), while a progress bar named ``what`` shows the bytes, speed and time left
    (no total when the server sends no Content-Length). Returns the number of bytes copied."""
    total = content_length(response)
    bar = Progress(TextColumn(f"downloading {what}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=console or Console(stderr=True), transient=False)
    size = 0
    with bar:
        task = bar.add_task(what, total=total)
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            size += len(chunk)
            bar.update(task, completed=size)
        bar.update(task, completed=size, total=size if total is None else total)
    return size
