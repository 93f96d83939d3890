"""The one way genlab deletes or replaces what a user pointed it at.

genlab deletes only what it can prove it wrote: a folder of a known kind (a run, an export, a sweep) that holds
that kind's marker file, or whose entries are the full set of files an older genlab wrote for it, and nothing
else (:class:`Layout`). It never deletes the root folder, a mount point, ``$HOME`` or a parent of it, or the
current folder or a parent of it (:func:`protected_reason`), whatever marker they hold. An output *file* never
names a file that genlab owns inside a run folder and always has the suffix of what is written
(:func:`check_output_file`).

Every refusal is a :class:`RunError` of one line naming the path and why. The only other deletions in genlab
are of temporary files a call just created itself (``genlab.io``).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from genlab.errors import RunError


def protected_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` must never be deleted or replaced, or None: the root folder, a mount point, ``$HOME`` or a
    parent of it, the current folder or a parent of it."""
    target = Path(path).absolute()
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if resolved == Path(resolved.anchor):
        return "the root folder"
    if os.path.ismount(resolved):
        return "a mount point"
    if resolved == cwd:
        return "the current folder"
    if cwd.is_relative_to(resolved):
        return f"a parent of the current folder {str(cwd)!r}"
    if resolved == home:
        return "your home folder ($HOME)"
    if home.is_relative_to(resolved):
        return "a parent of your home folder ($HOME)"
    return None


def refuse_protected(path: str | os.PathLike, action: str) -> None:
    """RunError ``refusing to <action> 'path': it is <reason>`` when :func:`protected_reason` names one."""
    why = protected_reason(path)
    if why is not None:
        raise RunError(f"refusing to {action} {str(path)!r}: it is {why}; give a folder of its own, e.g. "
                       "runs/NAME")


def read_marker(path: Path) -> dict | None:
    """A marker file's JSON object, or None when it is missing, unreadable or not a genlab marker."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 65536:
            return None
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and "genlab_version" in obj else None


@dataclass(frozen=True)
class Layout:
    """What genlab writes into one kind of folder, so that it can prove a folder is its own.

    ``marker``: the file genlab writes first into such a folder (JSON with ``genlab_version``, and for folders
    written in one go the ``files`` it wrote); ``names``: the entries (glob patterns, matched against each
    top-level name) such a folder may hold besides the marker; ``legacy``: recognises a folder of this kind
    written before markers existed (it sees the folder and returns None when it is one, else the reason it is
    not); ``kind``: words for messages.
    """

    kind: str
    marker: str
    names: tuple[str, ...]
    legacy: Callable[[Path], str | None] | None = None
    keep: tuple[str, ...] = field(default=())  # entries left in place when the folder is emptied (a lock)

    def unknown_entries(self, folder: Path) -> list[str]:
        """Top-level entries that this kind of folder never holds (the marker, ``keep`` and the files the marker
        lists as written are known)."""
        listed = (read_marker(folder / self.marker) or {}).get("files", [])
        allowed = (self.marker, *self.keep, *self.names, *(n for n in listed if isinstance(n, str)))
        return sorted(p.name for p in folder.iterdir() if not any(fnmatch(p.name, pat) for pat in allowed))

    def why_not_owned(self, folder: Path) -> str | None:
        """None when ``folder`` is provably a genlab folder of this kind, else why not (for a message)."""
        if folder.is_symlink():
            return "a symbolic link"
        if not folder.is_dir():
            return "not a folder"
        unknown = self.unknown_entries(folder)
        if read_marker(folder / self.marker) is None:
            legacy = self.legacy(folder) if self.legacy is not None else "no legacy layout"
            if legacy is not None:
                return f"not a genlab {self.kind} folder (no {self.marker}; {legacy})"
        if unknown:
            shown = ", ".join(repr(n) for n in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
            return f"it holds {shown}, which genlab does not write into {self.kind} folders"
        return None


def check_replaceable(folder: str | os.PathLike, layout: Layout, action: str = "--overwrite") -> None:
    """RunError of one line unless genlab may delete everything ``folder`` holds (protected folders never)."""
    folder = Path(folder)
    refuse_protected(folder, action)
    why = layout.why_not_owned(folder)
    if why is not None:
        raise RunError(f"refusing to {action} {str(folder)!r}: {why}; move what you want to keep out of it, "
                       "pick another folder, or empty it yourself if you mean it")


def _remove_entry(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)  # never follows a link inside: links are removed, not their targets
    else:
        p.unlink(missing_ok=True)


def empty_folder(folder: str | os.PathLike, layout: Layout, action: str = "--overwrite") -> None:
    """Delete what ``folder`` holds (but ``layout.keep``), after proving again that it may (a folder that
    changed since the caller's check is refused, nothing removed)."""
    folder = Path(folder)
    check_replaceable(folder, layout, action)
    for p in folder.iterdir():
        if p.name not in layout.keep:
            _remove_entry(p)


def remove_folder(folder: str | os.PathLike, layout: Layout, action: str = "replace") -> None:
    """Delete ``folder`` itself once it is proven to be genlab's (:func:`check_replaceable`)."""
    folder = Path(folder)
    check_replaceable(folder, layout, action)
    shutil.rmtree(folder)


def remove_owned_files(folder: Path, pattern: str, files: Iterable[Path]) -> None:
    """Delete ``files``, each of which must be an entry of ``folder`` whose name matches ``pattern`` (a
    checkpoint rotation, the unfinished writes a killed process left); anything else is refused."""
    for p in files:
        p = Path(p)
        if p.parent.resolve() != Path(folder).resolve() or not fnmatch(p.name, pattern) or p.is_dir():
            raise RunError(f"refusing to delete {str(p)!r}: it is not a {pattern} file of {str(folder)!r}")
        p.unlink(missing_ok=True)


def remove_created(path: Path, existed_before: set[str] | None) -> None:
    """Take back what one call created: the whole folder when it did not exist before the call
    (``existed_before`` None), else the entries that were not in ``existed_before``. Protected folders never."""
    if protected_reason(path) is not None or path.is_symlink() or not path.is_dir():
        return
    if existed_before is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    for p in path.iterdir():
        if p.name not in existed_before:
            try:
                _remove_entry(p)
            except OSError:
                pass


def remove_empty_created(folders: Iterable[Path]) -> None:
    """Remove folders one call created and left empty (a run's new ``runs/``, an emptied temporary folder), in the
    order given (innermost first), stopping at the first that is protected or no longer empty: ``rmdir`` never
    removes a folder that holds anything (another run may have started in it)."""
    for folder in folders:
        if protected_reason(folder) is not None or folder.is_symlink():
            return
        try:
            folder.rmdir()
        except OSError:
            return


def check_output_file(path: str | os.PathLike, suffixes: Iterable[str], option: str = "-o",
                      owner: Callable[[Path], str | None] | None = None) -> None:
    """RunError of one line unless ``path`` may receive a file genlab writes: it has one of ``suffixes`` (the
    kind of file written; compared case-insensitively), it is not a folder, and ``owner`` (which names the
    genlab file a path would replace, e.g. a run's records or checkpoints, or None) has no objection."""
    path = Path(path)
    wanted = tuple(s.lower() for s in suffixes)
    what = owner(path) if owner is not None else None
    if what is not None:
        raise RunError(f"{option} {str(path)!r} would replace {what}; write the result to another path")
    if path.is_dir():
        raise RunError(f"{option} {str(path)!r} is a folder; give a file path, e.g. "
                       f"{str(path / ('out' + (wanted[0] if wanted else '')))!r}")
    if path.exists() and not path.is_file():  # a device, a pipe, a socket: a write would replace it with a file
        raise RunError(f"{option} {str(path)!r} is not a regular file (a device, pipe or socket); give a file path")
    if wanted and path.suffix.lower() not in wanted:
        shown = " or ".join(wanted)
        raise RunError(f"{option} {str(path)!r}: genlab writes a {shown} file here; give a path ending in "
                       f"{wanted[0]}, e.g. {str(path.with_suffix(wanted[0]))!r}")
