"""``image-folder``: your own images under ``data.root``.

Layouts (JPEG, PNG, WebP, BMP, GIF, TIFF of any size; hidden files and other suffixes are ignored):

- labeled: ``root/<class>/**/<image>``. Class names are the sub-folder names, sorted; the label is the
  index in that order. Sub-folders holding no image are not classes. Images lying directly in ``root``
  next to class folders are ignored (with a warning).
- unlabeled: images directly in ``root`` and no class sub-folders.
- splits: ``train`` reads ``root/train/`` when it exists, else ``root`` (minus a ``test/`` sub-folder);
  ``test`` reads ``root/test/`` (same layout; its classes must exist in train) and fails without it.

Image order ("file order", which ``data.limit`` keeps the first N of) is by class, then by relative path.
An unreadable or truncated file is skipped and all skips are reported in one warning; with
``data.strict`` the first one raises a ``DataError`` naming it.

Captions (``data.captions``, a path absolute, relative to the working folder, or relative to ``root``):
- ``*.json``: one object mapping an image's path relative to ``root`` to its caption, e.g.
  ``{"cats/001.jpg": "a cat on a sofa"}``;
- anything else: UTF-8 text, one ``<relative path><TAB><caption>`` per line; blank lines and lines
  starting with ``#`` are ignored.
Paths may also be given relative to the split folder (``root/train``). An image without a caption gets
its class name (labeled) or ``""`` (unlabeled), and the count is reported in a warning.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from genlab.data.fetch import file_identity
from genlab.data.images import IMAGE_SUFFIXES, decode_all, is_image_file
from genlab.data.sources import DATASETS, DatasetSource, Decoded, LoadOptions
from genlab.errors import DataError


@dataclass
class Layout:
    split_root: Path
    files: list[Path] = field(default_factory=list)
    rels: list[str] = field(default_factory=list)  # posix paths relative to the dataset root
    labels: list[int] | None = None
    class_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def walk_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden entries skipped), sorted by relative path."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if _visible(d)]
        found += [Path(dirpath) / f for f in filenames if _visible(f) and is_image_file(Path(f))]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def split_root(root: Path, split: str) -> Path:
    if split == "test":
        test = root / "test"
        if not test.is_dir():
            raise DataError(
                f"image-folder: {root} has no test split; put test images in {test}/ (same layout as training)"
            )
        return test
    train = root / "train"
    return train if train.is_dir() else root


def _class_dirs(folder: Path, root: Path) -> dict[str, list[Path]]:
    """Sub-folders of ``folder`` that hold images, with their images (``test/`` excluded at the top level)."""
    excluded = {"test", "train"} if folder == root else set()
    out: dict[str, list[Path]] = {}
    for d in sorted(folder.iterdir(), key=lambda p: p.name):
        if d.is_dir() and _visible(d.name) and d.name not in excluded:
            images = walk_images(d)
            if images:
                out[d.name] = images
    return out


def scan(root: Path, split: str) -> Layout:
    if not root.is_dir():
        raise DataError(f"image-folder: {root} is not a folder")
    train_root = split_root(root, "train")
    folder = split_root(root, split)
    layout = Layout(split_root=folder)
    train_classes = _class_dirs(train_root, root)
    classes = train_classes if folder == train_root else _class_dirs(folder, root)
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    # a link that points nowhere is listed too: decoding skips it with the other unreadable files, in one warning
    loose = [p for p in entries if (p.is_file() or (p.is_symlink() and not p.exists())) and _visible(p.name)
             and is_image_file(p)]
    if train_classes:
        layout.class_names = sorted(train_classes)
        index = {name: i for i, name in enumerate(layout.class_names)}
        layout.labels = []
        for name, images in classes.items():
            if name not in index:
                raise DataError(
                    f"image-folder: class folder {folder / name} has no counterpart with images in {train_root}"
                )
            layout.files += images
            layout.labels += [index[name]] * len(images)
        if loose:
            layout.notes.append(
                f"image-folder: ignored {len(loose)} image(s) lying directly in {folder} next to class folders "
                f"(e.g. {loose[0].name}); move them into a class folder"
            )
    else:
        if classes:
            raise DataError(f"image-folder: {folder} has class folders but {train_root} has none")
        layout.files = loose
    layout.rels = [p.relative_to(root).as_posix() for p in layout.files]
    return layout


def resolve_captions(captions: Path | None, root: Path) -> Path | None:
    if captions is None:
        return None
    path = Path(captions).expanduser()
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        path = root / path
    if not path.is_file():
        raise DataError(f"captions file {captions} not found (looked in the working folder and in {root})")
    return path


def _key(path: str) -> str:
    return PurePosixPath(path.strip().replace("\\", "/")).as_posix()


def read_captions(path: Path) -> dict[str, str]:
    """Read a captions file (format in the module docstring) into {relative posix path: caption}."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read captions file {path}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"captions file {path} is not valid JSON: {e}") from None
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
            raise DataError(f"captions file {path} must hold one JSON object mapping relative image paths to strings")
        return {_key(k): v for k, v in obj.items()}
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{lineno}: expected '<relative image path><TAB><caption>'")
        rel, caption = line.split("\t", 1)
        out[_key(rel)] = caption.strip()
    return out


class ImageFolder(DatasetSource):
    name = "image-folder"
    description = "your own images in data.root: one sub-folder per class, or flat (unlabeled)"
    splits = ("train", "test")
    default_resolution = 64
    partial_decode = True

    def locate(self, root: Path | None) -> Path | None:
        if root is None:
            return None
        path = Path(root).expanduser()
        return path if path.is_dir() else None

    def prepare(self, root: Path | None, download: bool, verify: bool = True) -> Path:
        if root is None:
            raise DataError("image-folder needs a folder of images: set data.root (or --root)")
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DataError(f"image-folder: {path} is not a folder")
        return path

    def identity(self, folder: Path, split: str, opts: LoadOptions) -> list[Any]:
        layout = scan(folder, split)
        captions = resolve_captions(opts.captions, folder)
        return [
            "image-folder",
            opts.strict,
            layout.class_names,
            layout.labels,
            file_identity(layout.files),
            None if captions is None else file_identity([captions]),
        ]

    def decode(self, folder: Path, split: str, opts: LoadOptions) -> Decoded:
        layout = scan(folder, split)
        if not layout.files:
            raise DataError(
                f"image-folder: no images in {layout.split_root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        captions_path = resolve_captions(opts.captions, folder)
        items = zip(layout.rels, layout.files)
        images, kept, skipped, complete = decode_all(
            items, opts.resolution, opts.channels, strict=opts.strict, limit=opts.limit
        )
        if not kept:
            raise DataError(
                f"image-folder: none of the {len(layout.files)} image files under {layout.split_root} could be read, "
                f"e.g. {skipped[0]}"
            )
        labels = None if layout.labels is None else np.asarray(layout.labels, dtype=np.int64)[kept]
        notes = list(layout.notes)
        captions = None
        if captions_path is not None:
            table = read_captions(captions_path)
            prefix = layout.split_root.relative_to(folder).as_posix()
            captions, missing = [], 0
            for j, i in enumerate(kept):
                rel = layout.rels[i]
                in_split = rel[len(prefix) + 1 :] if prefix != "." else rel
                caption = table.get(rel, table.get(in_split))
                if caption is None:
                    missing += 1
                    caption = layout.class_names[labels[j]] if labels is not None else ""
                captions.append(caption)
            if missing:
                notes.append(
                    f"image-folder: {missing} image(s) have no caption in {captions_path}; using class names or ''"
                )
        return Decoded(
            images=images,
            labels=labels,
            class_names=list(layout.class_names),
            captions=captions,
            skipped=skipped,
            notes=notes,
            complete=complete,
        )


DATASETS.add(ImageFolder.name, ImageFolder())
