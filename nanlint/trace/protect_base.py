"""What the file overlay of ``protect.py`` is made of: the states a path can be in for the script, the record
of each redirected operation, the errors a plain run raises, and the directory entries ``os.scandir`` answers
with for copies."""
from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass

SYSTEM_PREFIXES = ("/dev/", "/proc/", "/sys/")
GONE, COPY, REAL = "gone", "copy", "real"  # what the script sees at a path


@dataclass
class Redirect:
    operation: str  # "write", "append", "torch.save", "remove", "rename", "rmtree", "copy", "move", "log"...
    path: str  # the user's path
    to: str | None  # where it went instead (None: nothing was done to the real file, e.g. a deletion)

    def to_dict(self) -> dict:
        return {"operation": self.operation, "path": self.path, "to": self.to}


def _shown(path):
    try:
        return os.fspath(path)
    except TypeError:
        return path


def _error(code: int, path) -> OSError:
    """The error a plain run raises (``OSError`` picks the subclass: ``FileNotFoundError`` for ENOENT...)."""
    return OSError(code, os.strerror(code), _shown(path))


class _Entry:
    """A directory entry the overlay adds or replaces (``os.scandir`` cannot build real ones): its ``name`` and
    ``path`` are the user's, what it describes is the copy."""

    def __init__(self, name, path, location: str, stat, lstat) -> None:
        self.name, self.path = name, path
        self._location, self._stat, self._lstat = location, stat, lstat

    def stat(self, *, follow_symlinks: bool = True):
        return (self._stat if follow_symlinks else self._lstat)(self._location)

    def _mode(self, follow_symlinks: bool) -> int:
        try:
            return self.stat(follow_symlinks=follow_symlinks).st_mode
        except OSError:
            return 0

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return stat_mod.S_ISDIR(self._mode(follow_symlinks))

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return stat_mod.S_ISREG(self._mode(follow_symlinks))

    def is_symlink(self) -> bool:
        return stat_mod.S_ISLNK(self._mode(False))

    def is_junction(self) -> bool:
        return False

    def inode(self) -> int:
        return self._lstat(self._location).st_ino

    def __fspath__(self):
        return self.path

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class _Listing:
    """What ``os.scandir`` returns: an iterator that is also a context manager."""

    def __init__(self, entries: list) -> None:
        self._it = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._it = iter(())
