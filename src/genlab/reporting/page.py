"""The report's page: blocks of sections holding images (data URIs), tables, notes and preformatted text, and
the template that renders them into one self-contained HTML file."""
from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from genlab import __version__
from genlab.grids import make_grid, png_bytes
from genlab.reporting.plots import figure_bytes

TEMPLATE = "report.html.j2"


@dataclass
class Image:
    src: str  # data URI
    caption: str = ""
    alt: str = ""
    pixelated: bool = False  # small sample grids: keep pixels sharp when scaled


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pre: str = ""  # preformatted text (config)


@dataclass
class Block:
    """One run, the comparison, or the sweep: an anchor, a heading and its sections."""

    id: str
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def fig_image(fig, caption: str = "", alt: str = "") -> Image:
    return Image(data_uri(figure_bytes(fig, "png", dpi=100)), caption, alt or caption)


def grid_image(images, nrow: int, caption: str = "", target_px: int = 480) -> Image:
    """A sample grid, upscaled by a whole factor (nearest) to about ``target_px`` wide when it is smaller."""
    grid = make_grid(images, nrow=nrow)
    scale = min(3, max(1, target_px // grid.shape[1]))
    return Image(data_uri(png_bytes(grid, scale=scale)), caption, caption, pixelated=True)


def file_image(path: Path, caption: str = "", pixelated: bool = False) -> Image:
    """A PNG or GIF an analysis command wrote, embedded as it is."""
    mime = "image/gif" if path.suffix.lower() == ".gif" else "image/png"
    return Image(data_uri(path.read_bytes(), mime), caption, caption, pixelated=pixelated)


def fmt(v) -> str:
    """A number as a table cell: 4 significant digits for floats."""
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)


def render(blocks: Sequence[Block], title: str) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("genlab.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(
        title=title, blocks=blocks, version=__version__,
        generated=_dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
