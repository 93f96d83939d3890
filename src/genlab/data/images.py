"""Turning pictures into uint8 arrays at one resolution and channel count, with Pillow, once.

Rules, the same for every dataset:
- colour: converted to ``L`` (channels=1) or ``RGB`` (channels=3) with Pillow's own formulas; images with
  an alpha channel (RGBA, LA, palette transparency) are composited on white first; 16-bit greyscale is
  scaled to 8 bits.
- shape: non-square images are centre-cropped to a square, then resized to ``resolution x resolution``
  with LANCZOS (antialiased) and ``reducing_gap``; images already at the size are not resampled.
- JPEGs larger than twice the target are decoded at a reduced DCT scale (``Image.draft``), which keeps
  at least 2x the target resolution for the final resize and makes big photos cheap to prepare.
- size: an image of more than ``MAX_PIXELS`` pixels (after that reduction) is not decoded at all: a 450 KB
  PNG of 12000 x 12000 would cost gigabytes; it is skipped like an unreadable file, naming its size.
"""
from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from genlab.errors import DataError

RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

#: the most pixels genlab decodes from one image (50 megapixels: the largest phone photos still fit)
MAX_PIXELS = 50_000_000

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """``im`` as ``L`` or ``RGB``; transparency is composited on white."""
    target = "L" if channels == 1 else "RGB"
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif im.mode in _WIDE_GREY_MODES:
        a = np.asarray(im, dtype=np.float64)
        if a.size and a.max() > 255:  # 16-bit range
            a = a / 257.0
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    return im if im.mode == target else im.convert(target)


def fit_image(im: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """An (H, W, C) uint8 array: ``im`` converted, centre-cropped to a square and resized."""
    im = to_mode(im, channels)
    w, h = im.size
    if (w, h) != (resolution, resolution):
        s = min(w, h)
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        im = im.resize((resolution, resolution), RESAMPLE, box=box, reducing_gap=REDUCING_GAP)
    a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def check_pixels(im: Image.Image) -> None:
    """DataError when an opened (not yet decoded) image has more than ``MAX_PIXELS`` pixels."""
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise DataError(f"{w}x{h} pixels is more than the {MAX_PIXELS // 1_000_000} megapixels genlab decodes; "
                        "resize it first")


def decode_image(src: bytes | Path, resolution: int, channels: int) -> np.ndarray:
    """Open an encoded image (bytes or a path) and ``fit_image`` it (too large: DataError, before decoding)."""
    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
        if im.format == "JPEG":
            im.draft("L" if channels == 1 else "RGB", (2 * resolution, 2 * resolution))
        check_pixels(im)
        im.load()
        return fit_image(im, resolution, channels)


def rgb_to_l(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) -> (N, 1, H, W) with Pillow's ITU-R 601-2 luma in fixed point (identical to convert("L"))."""
    r, g, b = (images[:, i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[:, None]


def _resize_rows(images: np.ndarray, width: int) -> np.ndarray:
    """Resize the width of (N, H, W[, 3]) images to ``width`` with one Pillow call on an (N*H, W) strip.

    Pillow resamples separably and only runs the passes whose size changes, so a width-only resize of
    stacked images is exactly the per-image horizontal pass, with no bleeding between images.
    """
    n, h, w = images.shape[:3]
    mode = "L" if images.ndim == 3 else "RGB"
    strip = Image.frombuffer(mode, (w, n * h), np.ascontiguousarray(images).tobytes(), "raw", mode, 0, 1)
    strip = strip.resize((width, n * h), RESAMPLE, reducing_gap=REDUCING_GAP)
    return np.asarray(strip).reshape((n, h, width) + images.shape[3:])


def _resize_square(images: np.ndarray, resolution: int) -> np.ndarray:
    """Square (N, S, S[, 3]) images to (N, R, R[, 3]): horizontal pass, then the vertical one on transposes."""
    out = _resize_rows(images, resolution)
    return np.ascontiguousarray(_resize_rows(out.swapaxes(1, 2), resolution).swapaxes(1, 2))


def fit_array(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """Native uint8 (N, C, S, S) arrays (IDX, CIFAR) to (N, channels, resolution, resolution).

    Same result as ``fit_image`` on each image, without its per-image overhead: colour reduction happens
    before resizing and grey -> RGB replication after it; at native size nothing is resampled.
    """
    square = images.ndim == 4 and images.shape[2] == images.shape[3]
    if images.dtype != np.uint8 or not square or images.shape[1] not in (1, 3):
        raise DataError(f"expected square uint8 (N, 1|3, S, S) images, got {images.dtype} {images.shape}")
    if images.shape[1] == 3 and channels == 1:
        images = rgb_to_l(images)
    n, c, size, _ = images.shape
    if size != resolution and n:
        hwc = images[:, 0] if c == 1 else images.transpose(0, 2, 3, 1)
        chunks = [hwc[i : i + 2048] for i in range(0, n, 2048)]
        with ThreadPoolExecutor(max_workers=default_workers()) as pool:
            out = np.concatenate(list(pool.map(lambda x: _resize_square(x, resolution), chunks)))
        images = out[:, None] if c == 1 else out.transpose(0, 3, 1, 2)
    images = np.ascontiguousarray(images)
    if images.shape[1] == 1 and channels == 3:
        images = np.repeat(images, 3, axis=1)
    return images


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_all(
    items: Iterable[tuple[str, bytes | Path]],
    resolution: int,
    channels: int,
    *,
    strict: bool,
    limit: int | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, list[int], list[str], bool]:
    """Decode ``(name, bytes or path)`` items in a thread pool, keeping their order.

    Returns ``(images (N, C, H, W), kept item indices, skipped "name (reason)", complete)``. An unreadable
    item is skipped, or raises ``DataError`` naming it when ``strict``. With ``limit`` decoding stops after
    that many good images; ``complete`` is False when items were left undecoded because of it.
    """
    workers = workers or default_workers()
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    pending: deque[tuple[int, str, Future]] = deque()
    complete = True

    def full() -> bool:
        return limit is not None and len(arrays) >= limit

    def drain(keep: int) -> None:
        nonlocal complete
        while len(pending) > keep:
            i, name, fut = pending.popleft()
            if full():
                complete = False
                fut.cancel()
                continue
            try:
                arr = fut.result()
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                if strict:
                    raise DataError(f"cannot read image {name}: {reason}") from None
                skipped.append(f"{name} ({reason})")
                continue
            arrays.append(arr)
            kept.append(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            iterator = iter(items)
            for i, (name, src) in enumerate(iterator):
                if full():
                    complete = False
                    break
                pending.append((i, name, pool.submit(decode_image, src, resolution, channels)))
                drain(4 * workers)
            drain(0)
        finally:
            for _, _, fut in pending:
                fut.cancel()
            close = getattr(items, "close", None)
            if close is not None:
                close()
    if arrays:
        images = np.stack(arrays).transpose(0, 3, 1, 2)
    else:
        images = np.empty((0, channels, resolution, resolution), dtype=np.uint8)
    return np.ascontiguousarray(images), kept, skipped, complete


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES
