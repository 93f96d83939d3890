"""Reading tar archives in place, safely.

Archives are never extracted to disk: the wanted members are read straight from the (possibly gzipped)
stream. Every member is still checked as if it were going to be extracted, so an archive with an absolute
path, a ``..`` escape, a link or a device file is refused with a ``DataError`` that names the member.
"""
from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from genlab.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_member(name: str) -> str:
    """``./jpg/a.jpg`` -> ``jpg/a.jpg``: the form archive members are matched in."""
    return PurePosixPath(name).as_posix().lstrip("/") if name not in ("", ".") else ""


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise DataError(f"{archive.name}: refusing member {name!r}: absolute path")
    if ".." in parts:
        raise DataError(f"{archive.name}: refusing member {name!r}: it escapes the archive folder ('..')")
    if member.issym() or member.islnk():
        raise DataError(f"{archive.name}: refusing member {name!r}: links are not allowed (-> {member.linkname!r})")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive.name}: refusing member {name!r}: not a regular file or folder")


def read_members(archive: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(normalized name, contents)`` of each regular member for which ``wanted(name)`` is true.

    Every member, wanted or not, is checked by ``check_member``; reading and decompression errors become a
    ``DataError`` naming the archive.
    """
    archive = Path(archive)
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                check_member(member, archive)
                name = normalize_member(member.name)
                if not member.isfile() or not wanted(name):
                    continue
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    continue
                yield name, f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"cannot read archive {archive}: {e} (corrupt or truncated? delete it and prepare again)"
        ) from None
