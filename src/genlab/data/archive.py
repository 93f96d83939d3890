"""Reading tar archives in place, safely.

Archives are never extracted to disk: the wanted members are read straight from the (possibly gzipped)
stream. Every member is still checked as if it were going to be extracted, so an archive with an absolute
path, a ``..`` escape, a link or a device file is refused with a ``DataError`` that names the member, and a
wanted member is read into memory only when its declared size is under the caller's cap (each dataset caps its
members at a few times their real size), so a corrupt or hostile header cannot exhaust memory.
"""
from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from genlab.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")

#: the cap on one member's size when the caller names none
DEFAULT_MAX_MEMBER_BYTES = 256 << 20


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


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def read_members(archive: Path, wanted: Callable[[str], bool],
                 max_bytes: int = DEFAULT_MAX_MEMBER_BYTES) -> Iterator[tuple[str, bytes]]:
    """Yield ``(normalized name, contents)`` of each regular member for which ``wanted(name)`` is true.

    Every member, wanted or not, is checked by ``check_member``; a wanted member whose declared size exceeds
    ``max_bytes`` is refused before it is read. Reading and decompression errors become a ``DataError`` naming
    the archive.
    """
    archive = Path(archive)
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                check_member(member, archive)
                name = normalize_member(member.name)
                if not member.isfile() or not wanted(name):
                    continue
                if member.size > max_bytes:
                    raise DataError(
                        f"{archive.name}: refusing member {member.name!r}: it declares {member.size} bytes "
                        f"({_mib(member.size)}), more than the {_mib(max_bytes)} a member of this dataset may have "
                        "(corrupt or not the published archive? delete it and prepare again)"
                    )
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    continue
                yield name, f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"cannot read archive {archive}: {e} (corrupt or truncated? delete it and prepare again)"
        ) from None
