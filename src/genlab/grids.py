"""Image grids: float images in [-1, 1] -> one uint8 picture -> PNG, or frames -> an animated GIF (Pillow)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.data.base import to_uint8
from genlab.errors import GenlabError
from genlab.io import atomic_write_bytes


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """(N, C, H, W) float in [-1, 1] (or uint8) -> (H', W', 3) uint8 grid, ``nrow`` images per row."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    images = images.cpu()
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, 3), pad_value, np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = arr[i]
    return grid


#: image formats a grid can be written in, by file suffix (Pillow's format names)
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def image_format(path: str | Path) -> str:
    """The Pillow format a grid written to ``path`` gets (from its suffix); GenlabError for any other suffix, so a
    file never holds another format than its name says."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise GenlabError(f"cannot write an image grid to {str(path)!r}: unknown suffix {suffix or '(none)'!r}; "
                          f"end the name with {', '.join(IMAGE_FORMATS)}")
    return IMAGE_FORMATS[suffix]


def image_bytes(array: np.ndarray, scale: int = 1, format: str = "PNG") -> bytes:
    """(H, W, 3) uint8 -> the encoded file (PNG, JPEG at quality 95, or lossless WebP)."""
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    options = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}.get(format, {})
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=format, **options)  # JPEG has no alpha: RGB (grids are RGB already)
    return buf.getvalue()


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    return image_bytes(array, scale, "PNG")


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> np.ndarray:
    """Write a grid atomically in the format its suffix names (.png, .jpg/.jpeg, .webp); returns the grid array
    (for TensorBoard)."""
    fmt = image_format(path)
    grid = make_grid(images, nrow)
    atomic_write_bytes(path, image_bytes(grid, scale, fmt))
    return grid


def save_strip(images: torch.Tensor, path: str | Path, nrow: int, scale: int = 2) -> Path:
    """A grid of frames, ``nrow`` per row (a strip when there is one row), as PNG."""
    atomic_write_bytes(path, png_bytes(make_grid(images, nrow=nrow), scale=scale))
    return Path(path)


def gif_bytes(images: torch.Tensor, rows: int = 1, duration_ms: int = 120, scale: int = 3,
              bounce: bool = True) -> bytes:
    """An animated GIF: frame t shows step t of every row side by side. ``bounce`` plays it back and forth."""
    n = len(images)
    if rows < 1 or n % rows:
        raise GenlabError(f"{n} frames cannot be split into {rows} rows")
    steps = n // rows
    per_step = images.reshape(rows, steps, *images.shape[1:]).transpose(0, 1)  # (steps, rows, C, H, W)
    frames = []
    for t in range(steps):
        arr = make_grid(per_step[t], nrow=rows)
        img = Image.fromarray(arr)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        frames.append(img.convert("P", palette=Image.ADAPTIVE, colors=255) if arr.ndim == 3 else img)
    order = frames + frames[-2:0:-1] if bounce and len(frames) > 2 else frames
    buf = io.BytesIO()
    order[0].save(buf, format="GIF", save_all=True, append_images=order[1:], duration=duration_ms, loop=0,
                  disposal=2)
    return buf.getvalue()


def save_gif(images: torch.Tensor, path: str | Path, rows: int = 1, duration_ms: int = 120, scale: int = 3,
             bounce: bool = True) -> Path:
    atomic_write_bytes(path, gif_bytes(images, rows, duration_ms, scale, bounce))
    return Path(path)
