"""Nothing the user owns is lost, even when the tracer is killed (SIGKILL) at any instant: the script's writes,
moves and deletions outside a temporary folder never touch the user's files. Writes go to copies in the
temporary folder; deletions and moves are *virtual*: the real file stays where it is, untouched, and an overlay
makes the script see it gone. No user file is ever renamed, moved, truncated or deleted, so there is nothing to
put back after the run and nothing to lose when the run is cut short.

The overlay (active only while the script runs) holds:

* ``map``: user path -> its copy in the temporary folder (``TEMP/<absolute user path>``), for what the script
  wrote (a copy under a copied folder counts too);
* ``gone``: user paths the script deleted or moved away; a folder hides everything beneath it;
* ``fresh``: folders the script deleted and then made again (``shutil.rmtree(out); os.makedirs(out)``): the
  folder is visible, empty, and its old children stay hidden;
* ``made``: folders the script really created (see below).

The first marker found walking from a path up to ``/`` decides what the script sees.

Intercepted writes (to the copy): ``builtins.open`` / ``io.open`` in a writing mode (also ``pathlib.Path.open``/
``write_text``/``write_bytes``, ``np.save``/``np.savez`` and ``zipfile``, which go through them), ``os.open`` for
writing (``tempfile.mkstemp``/``NamedTemporaryFile`` in the user's folder, lock files), ``torch.save``,
``logging.FileHandler``, ``shutil.copy``/``copy2``/``copyfile``/``copytree``, ``Path.touch``.
Intercepted deletions and moves (virtual): ``os.remove``/``unlink``/``rmdir`` (so ``Path.unlink``/``rmdir``),
``shutil.rmtree``, ``os.rename``/``replace``/``shutil.move`` (the destination is a copy; the source is hidden).
Intercepted views, so that the script sees its deletions and its own files: ``os.stat``/``lstat`` (so
``os.path.exists``/``isfile``/``isdir``/``lexists``/``getsize`` and ``Path.exists``/``is_file``/``is_dir``/
``stat``), ``os.listdir`` (so ``Path.iterdir``), ``os.scandir`` (so ``os.walk``, ``glob``, ``Path.glob``,
``shutil.copytree``), opening for reading (a deleted path raises ``FileNotFoundError``; a written one reads its
copy). A second deletion, a ``rmdir`` of a folder that is not empty in the overlay, and a write into a deleted
folder fail as they would in a plain run.
Folders the script creates (``os.mkdir``/``os.makedirs``/``Path.mkdir``) are really created, empty (the writes
into them are redirected), so that ``os.chdir``, native writers and listings behave; they are removed after
the run when still empty (a SIGKILL leaves them, empty).
Not intercepted: calls with ``dir_fd``/file descriptors, ``os.access``, ``os.chmod``/``utime``/``truncate``/
``link``/``symlink``, ``os.chdir`` into a deleted folder, reads and writes by C extensions and native
libraries that open files themselves (``tensorboard``'s C writer, HDF5, OpenCV...), subprocesses (they see the
real files)."""
from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import stat as stat_mod
import tempfile
import threading

from nanlint.trace.patches import Patcher
from nanlint.trace.protect_base import COPY, GONE, REAL, SYSTEM_PREFIXES, Redirect, _error
from nanlint.trace.protect_libs import LibraryPatches
from nanlint.trace.protect_os import OsPatches

__all__ = ["Protector", "Redirect"]


class Protector(OsPatches, LibraryPatches):
    """The overlay (what the script sees at each path, where its writes go) and its installation; the patched
    calls are in ``protect_os.py`` and ``protect_libs.py``."""

    def __init__(self, patcher: Patcher, keep_dir: str | None = None) -> None:
        self.patcher = patcher
        # made before any patch is installed (mkdtemp inside a patched os.open would re-enter tempfile's lock);
        # removed after the run when nothing was redirected into it
        self._made_dir = keep_dir is None
        self._dir = keep_dir or tempfile.mkdtemp(prefix="nanlint-trace-")
        self.real_dir = os.path.realpath(self._dir)
        self.map: dict[str, str] = {}  # user path -> redirected copy
        self.gone: set[str] = set()  # user paths the script deleted (a folder: with everything beneath)
        self.fresh: set[str] = set()  # folders deleted, then made again: visible and empty
        self.made: set[str] = set()  # folders the script created (really)
        self.redirects: list[Redirect] = []
        self.active = False
        self._originals: dict[str, object] = {}
        self.created_dirs: list[str] = []  # user directories the script created, in creation order
        self._local = threading.local()  # .busy: the protector itself is asking the file system

    @property
    def dir(self) -> str:
        return self._dir

    @property
    def kept_dir(self) -> str | None:
        """The folder that holds the redirected files, if the run left any there."""
        return self._dir if os.path.isdir(self._dir) else None

    def _discard_empty_dir(self) -> None:
        if not self._made_dir or not os.path.isdir(self._dir):
            return
        if not any(files for _, _, files in os.walk(self._dir)):
            shutil.rmtree(self._dir, ignore_errors=True)

    # ---- path mapping ----------------------------------------------------------------------------
    def _path(self, file, follow: bool = True) -> str | None:
        """Absolute path of a path-like that the protector guards, else None (fds, tmp, /dev/null...).
        ``follow``: the real path (symlinks resolved); else only the folder is resolved, not the last name."""
        if isinstance(file, int) or not isinstance(file, (str, bytes, os.PathLike)):
            return None
        try:
            path = os.fspath(file)
        except TypeError:
            return None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        local = self._local
        was, local.busy = getattr(local, "busy", False), True  # realpath calls os.lstat: the real one
        try:
            path = os.path.abspath(path)
            head, tail = os.path.split(path)
            real = os.path.realpath(path) if follow or not tail else os.path.join(os.path.realpath(head), tail)
        finally:
            local.busy = was
        if real.startswith(self.real_dir + os.sep) or real == self.real_dir or real.startswith(SYSTEM_PREFIXES):
            return None
        return real

    def _copy_of(self, path: str) -> str:
        return os.path.join(self.dir, path.lstrip(os.sep))

    def _target(self, path: str, operation: str, copy_existing: bool = False, record: bool = True) -> str:
        target = self.map.get(path)
        if target is None:
            kind, location = self._state(path)
            target = location if kind == COPY else self._copy_of(path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if copy_existing and kind == REAL and self._real_isfile(path):
                self._orig("copyfile")(path, target)
            self.map[path] = target
            if path in self.gone:  # written again after a deletion: visible, what was beneath stays hidden
                self.gone.discard(path)
                self.fresh.add(path)
            if record:
                self.redirects.append(Redirect(operation, path, target))
        return target

    def _orig(self, name):
        return self._originals[name]

    # ---- the overlay -----------------------------------------------------------------------------
    def _real_lstat(self, path: str):
        try:
            return self._orig("lstat")(path)
        except (OSError, ValueError):
            return None

    def _real_isfile(self, path: str) -> bool:
        try:
            return stat_mod.S_ISREG(self._orig("stat")(path).st_mode)
        except (OSError, ValueError):
            return False

    def _real_isdir(self, path: str) -> bool:
        try:
            return stat_mod.S_ISDIR(self._orig("stat")(path).st_mode)
        except (OSError, ValueError):
            return False

    def _overlaid(self) -> bool:
        """Whether the script's view differs from the file system at all (else every view is the real one)."""
        return bool(self.map or self.gone or self.fresh)

    def _watching(self) -> bool:
        return self.active and not getattr(self._local, "busy", False) and self._overlaid()

    def _state(self, key: str) -> tuple[str, str | None]:
        """(GONE, None), (COPY, where the copy is) or (REAL, key) for a guarded path: the first marker on the way
        from the path up to ``/`` decides."""
        if not self._overlaid():
            return REAL, key
        if key in self.map:
            return COPY, self.map[key]
        if key in self.fresh or key in self.made:
            return REAL, key
        if key in self.gone:
            return GONE, None
        child, parent = key, os.path.dirname(key)
        while parent != child:
            copied = self.map.get(parent)  # under a copied folder (copytree, a folder made over a file)
            if copied is not None:
                location = copied + key[len(parent):]
                if self._real_lstat(location) is not None:
                    return COPY, location
            if parent in self.gone or parent in self.fresh:
                return GONE, None
            if parent in self.made:
                return REAL, key
            child, parent = parent, os.path.dirname(parent)
        return REAL, key

    def _view(self, file, follow: bool = True):
        """(key, kind, location) of what the script sees at ``file``, None when it is not guarded. Following a
        symlink, a deleted link and a deleted target both make it gone."""
        key = self._path(file, follow=False)
        if key is None:
            return None
        kind, location = self._state(key)
        if follow and kind == REAL:
            real = self._path(file)
            if real is not None and real != key:
                key = real
                kind, location = self._state(real)
        return key, kind, location

    def _read_path(self, file):
        """What to open for reading ``file``: its copy, itself, or FileNotFoundError when the script deleted it."""
        if not self._watching():
            return file
        view = self._view(file)
        if view is None:
            return file
        _, kind, location = view
        if kind == GONE:
            raise _error(errno.ENOENT, file)
        return location if kind == COPY else file

    def _entries(self, key: str, shown) -> dict | None:
        """name -> copy (None: the real entry) of the folder ``key`` as the script sees it; None when nothing in
        the overlay touches it (the real call answers, errors included)."""
        kind, location = self._state(key)
        if kind == GONE:
            raise _error(errno.ENOENT, shown)
        children = [k for k in (*self.map, *self.gone, *self.fresh) if os.path.dirname(k) == key and k != key]
        if kind == REAL and not children and key not in self.fresh:
            return None
        entries: dict = {}
        if self._real_isdir(key):
            for name in self._orig("listdir")(key):
                child_kind, child_location = self._state(os.path.join(key, name))
                if child_kind != GONE:
                    entries[name] = child_location if child_kind == COPY else None
        elif kind == REAL:
            return None
        if kind == COPY:
            if not self._real_isdir(location):
                raise _error(errno.ENOTDIR, shown)
            for name in self._orig("listdir")(location):
                entries[name] = os.path.join(location, name)
        for k, copy in list(self.map.items()):
            if os.path.dirname(k) == key and k != key and self._real_lstat(copy) is not None:
                entries[os.path.basename(k)] = copy
        return entries

    def _forget(self, key: str) -> None:
        """The script deleted ``key``: drop its copies and every marker at or beneath it."""
        prefix = key.rstrip(os.sep) + os.sep

        def under(k: str) -> bool:
            return k == key or k.startswith(prefix)

        for k in [k for k in self.map if under(k)]:
            del self.map[k]
        self.gone = {k for k in self.gone if not under(k)}
        self.fresh = {k for k in self.fresh if not under(k)}
        self.made = {k for k in self.made if not under(k)}
        copy = self._copy_of(key)
        st = self._real_lstat(copy)
        if st is not None:
            if stat_mod.S_ISDIR(st.st_mode):
                self._orig("rmtree")(copy, ignore_errors=True)
            else:
                self._orig("remove")(copy)

    def _delete(self, key: str, shown, operation: str) -> None:
        """A virtual deletion ("remove", "rmdir", "rmtree"): the real file is never touched; the script sees it
        gone. Fails as a plain run would (missing, a folder for remove, a file for rmdir, not empty)."""
        kind, location = self._state(key)
        st = None if kind == GONE else self._real_lstat(location if kind == COPY else key)
        if st is None:
            raise _error(errno.ENOENT, shown)
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        if operation == "remove" and is_dir:
            raise _error(errno.EISDIR, shown)
        if operation == "rmtree" and stat_mod.S_ISLNK(st.st_mode):
            raise OSError("Cannot call rmtree on a symbolic link")
        if operation != "remove" and not is_dir:
            raise _error(errno.ENOTDIR, shown)
        if operation == "rmdir":
            entries = self._entries(key, shown)
            if entries is None:
                entries = self._orig("listdir")(location if kind == COPY else key)
            if entries:
                raise _error(errno.ENOTEMPTY, shown)
        self._forget(key)
        if self._real_lstat(key) is not None:
            self.gone.add(key)
            self.redirects.append(Redirect(operation, key, None))

    def _open_target(self, key: str, shown, operation: str, keep: bool, create: bool, exclusive: bool) -> str:
        """The copy a write to ``key`` goes to (``keep``: it starts as what the script sees there)."""
        kind, location = self._state(key)
        where = location if kind == COPY else key if kind == REAL else None
        exists = where is not None and self._real_lstat(where) is not None
        if exclusive and exists:
            raise _error(errno.EEXIST, shown)
        if not create and not exists:
            raise _error(errno.ENOENT, shown)
        if kind == GONE and self._state(os.path.dirname(key))[0] == GONE:  # a write into a deleted folder
            raise _error(errno.ENOENT, shown)
        return self._target(key, operation, copy_existing=keep)

    # ---- install ---------------------------------------------------------------------------------
    def install(self) -> None:
        self.active = True
        p = self.patcher
        self._originals.update(open=builtins.open, copyfile=shutil.copyfile, copy2=shutil.copy2,
                               copytree=shutil.copytree, rmtree=shutil.rmtree, remove=os.remove, rename=os.rename,
                               replace=os.replace, rmdir=os.rmdir, move=shutil.move, stat=os.stat, lstat=os.lstat,
                               listdir=os.listdir, scandir=os.scandir)
        original_open = builtins.open

        def guarded_open(file, mode="r", *args, **kwargs):
            if self.active:
                if any(c in mode for c in "wax+"):
                    path = self._path(file)
                    if path is not None:
                        keep = "a" in mode or "+" in mode and "w" not in mode
                        file = self._open_target(path, file, "append" if "a" in mode else "write", keep=keep,
                                                 create=any(c in mode for c in "wax"), exclusive="x" in mode)
                else:
                    file = self._read_path(file)
            return original_open(file, mode, *args, **kwargs)

        p.set(builtins, "open", guarded_open)
        p.set(io, "open", guarded_open)
        self._patch_views()
        self._patch_os()
        self._patch_shutil()
        self._patch_torch()
        self._patch_logging()

    def remove(self) -> None:
        """Stop redirecting and forget the overlay (the user's files were never touched: nothing to put back);
        remove the directories the script created that are still empty."""
        self.active = False
        self._remove_created_dirs()
        self.gone.clear()
        self.fresh.clear()
        self.made.clear()
        self._discard_empty_dir()

    def _remove_created_dirs(self) -> None:
        for path in reversed(self.created_dirs):
            try:
                self._orig("rmdir")(path)
                self.redirects.append(Redirect("mkdir", path, None))
            except OSError:  # something wrote there that the protector could not redirect
                if os.path.isdir(path):
                    self.redirects.append(Redirect("mkdir-kept", path, None))
        self.created_dirs.clear()
