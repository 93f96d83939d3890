"""`genlab datasets ...`: list the dataset sources and prepare one (locate/download, verify, decode, cache)."""
from __future__ import annotations

import enum
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from genlab.data import DATASETS, dataset_info, load_dataset, prepare_dataset, prepared_file
from genlab.errors import ConfigError

app = typer.Typer(help="List, download and prepare datasets.", no_args_is_help=True)

# The registry's names are the command's choices (shown in --help).
DatasetName = enum.Enum("DatasetName", {name: name for name in DATASETS.names()}, type=str)  # type: ignore[misc]


@app.command("list")
def list_datasets() -> None:
    """Show every dataset source and where a local copy of its raw files was found."""
    table = Table(title="genlab datasets")
    for column in ("name", "description", "classes", "splits", "local copy"):
        table.add_column(column, overflow="fold")
    for name, source in DATASETS.items():
        info = dataset_info(name)
        if not info.files:
            where = Text("needs --root / data.root", style="dim")
        else:
            folder = source.locate(None)
            where = Text(str(folder)) if folder else Text("not found (downloads on prepare)", style="dim")
        classes = str(info.num_classes) if info.labeled else "-"
        table.add_row(name, info.description, classes, ", ".join(info.splits), where)
    Console(markup=False).print(table)


@app.command("prepare")
def prepare(
    name: Annotated[DatasetName, typer.Argument(help="dataset to prepare")],  # type: ignore[valid-type]
    root: Annotated[Path | None, typer.Option("--root", help="folder holding (or receiving) the raw files")] = None,
    download: Annotated[bool, typer.Option("--download/--no-download", help="allow downloading raw files")] = True,
    resolution: Annotated[int | None, typer.Option(help="side in pixels (default: per dataset)")] = None,
    channels: Annotated[int | None, typer.Option(help="1 (grey) or 3 (RGB) (default: the dataset's own)")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify",
                                         help="refuse raw files whose md5 is not the published one")] = True,
) -> None:
    """Locate or download NAME's raw files, verify them, decode the train split once and cache it."""
    if resolution is not None and resolution < 8:
        raise ConfigError(f"--resolution {resolution} is not allowed: an image side of at least 8 pixels")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"--channels {channels} is not allowed: 1 (grayscale) or 3 (RGB)")
    console = Console(markup=False)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = DATASETS.get(name.value)
    cfg = SimpleNamespace(
        name=name.value,
        root=None if root is None else str(root),
        limit=None,
        resolution=resolution or source.default_resolution,
        channels=channels or source.native_channels,
        strict=False,
        download=download,
        captions=None,
        verify=verify,
    )
    # A GenlabError propagates: the main CLI prints it as one line.
    folder = prepare_dataset(name.value, root=root, download=download, verify=verify)
    data = load_dataset(cfg, "train")
    cached = prepared_file(cfg, "train")
    console.print(f"raw files: {folder}", soft_wrap=True)
    labels = f", {data.num_classes} classes" if data.labeled else ", unlabeled"
    console.print(
        f"train split: {len(data)} images at {cfg.resolution}x{cfg.resolution}, {cfg.channels} channel(s){labels}",
        soft_wrap=True,
    )
    console.print(f"prepared: {cached}", soft_wrap=True)
