"""Files a ceremony writes: never over an existing one.

Every output of a ceremony (exports, rosters, key files, the printable transcript copy)
is checked before any card or HSM is touched (:func:`refuse_existing`) and then created
with :func:`write_new`: written to a temporary file, flushed to disk and linked into place
only if the name is still free (on a file system without hard links, e.g. a FAT stick,
created exclusively instead).  An existing file is refused with :class:`OutputExists`,
naming the file and the option that chooses another place (docs/ceremonies.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from coldvault.errors import Refused


class OutputExists(Refused):
    """A file the ceremony would write already exists; nothing was overwritten."""

    code = "output-exists"

    def __init__(self, path: Path, instead: str) -> None:
        super().__init__(
            f"The file {path} already exists and a ceremony never overwrites it; {instead}"
        )
        self.path = str(path)
        self.instead = instead


def refuse_existing(paths: Iterable[Path], instead: str) -> None:
    """Raise :class:`OutputExists` for the first of ``paths`` that exists."""
    for path in paths:
        if path.exists() or path.is_symlink():
            raise OutputExists(path, instead)


def write_new(path: Path, data: bytes, instead: str) -> Path:
    """Create ``path`` with ``data`` (complete and fsynced, or not at all); an existing
    ``path`` is refused with :class:`OutputExists` and left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExists(path, instead) from None
    except OSError:  # no hard links here (e.g. a FAT export stick): create it exclusively
        _write_exclusive(path, data, instead)
    finally:
        tmp.unlink()
    return path


def _write_exclusive(path: Path, data: bytes, instead: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise OutputExists(path, instead) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink()  # ours, created a moment ago and incomplete
        raise
    os.close(fd)


__all__ = ["OutputExists", "refuse_existing", "write_new"]
