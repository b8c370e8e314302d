"""The file-system calls of the ``os`` module (and ``Path.touch``) as the protected script sees them: views
(``stat``/``lstat``/``listdir``/``scandir``) that show its deletions and its own files, virtual deletions and
moves, folders it makes, ``os.open`` for writing redirected to copies. A mixin of ``protect.Protector``: the
methods use its overlay (``_path``, ``_state``, ``_entries``, ``_delete``, ``_target``...)."""
from __future__ import annotations

import errno
import os
import pathlib
import shutil
import stat as stat_mod

from nanlint.trace.protect_base import COPY, GONE, Redirect, _Entry, _error, _Listing, _shown


class OsPatches:
    def _patch_views(self) -> None:
        """``stat``/``lstat``/``listdir``/``scandir`` as the script sees the files: deletions gone, copies in
        place. Nothing changes while nothing was written or deleted."""
        o_stat, o_lstat, o_listdir, o_scandir = os.stat, os.lstat, os.listdir, os.scandir

        def stat(path, *, dir_fd=None, follow_symlinks=True):
            if dir_fd is None and self._watching():
                view = self._view(path, follow_symlinks)
                if view is not None:
                    _, kind, location = view
                    if kind == GONE:
                        raise _error(errno.ENOENT, path)
                    if kind == COPY:
                        return (o_stat if follow_symlinks else o_lstat)(location)
            return o_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

        def lstat(path, *, dir_fd=None):
            return stat(path, dir_fd=dir_fd, follow_symlinks=False)

        def entries(path):
            if isinstance(path, int) or not self._watching():
                return None
            key = self._path(path)
            return None if key is None else self._entries(key, path)

        def listdir(path="."):
            found = entries(path)
            if found is None:
                return o_listdir(path)
            as_bytes = isinstance(_shown(path), bytes)
            return [os.fsencode(n) if as_bytes else n for n in found]

        def scandir(path="."):
            found = entries(path)
            if found is None:
                return o_scandir(path)
            shown = _shown(path)
            as_bytes = isinstance(shown, bytes)
            real = {}
            if any(copy is None for copy in found.values()):
                with o_scandir(path) as it:
                    real = {os.fsdecode(e.name): e for e in it}
            out = []
            for name, copy in found.items():
                if copy is None:
                    if name in real:
                        out.append(real[name])
                    continue
                shown_name = os.fsencode(name) if as_bytes else name
                out.append(_Entry(shown_name, os.path.join(shown, shown_name), copy, o_stat, o_lstat))
            return _Listing(out)

        self.patcher.set(os, "stat", stat)
        self.patcher.set(os, "lstat", lstat)
        self.patcher.set(os, "listdir", listdir)
        self.patcher.set(os, "scandir", scandir)

    def _patch_os(self) -> None:
        def deleter(name):
            original = self._originals[name]

            def delete(path, *args, **kwargs):
                key = self._path(path, follow=False) if self.active and not args and not kwargs else None
                if key is None:
                    return original(path, *args, **kwargs)
                self._delete(key, path, "rmdir" if name == "rmdir" else "remove")
                return None
            return delete

        def mover(name):
            original = self._originals[name]

            def move(src, dst, *args, **kwargs):
                if not self.active or args or kwargs:
                    return original(src, dst, *args, **kwargs)
                s, d = self._path(src, follow=False), self._path(dst)
                if d is None and s is None:
                    return original(src, dst)
                if s is not None and s == d:
                    return None  # renaming a path to itself does nothing
                kind = location = None
                if s is not None:
                    kind, location = self._state(s)
                    if kind == GONE or self._real_lstat(location if kind == COPY else s) is None:
                        raise _error(errno.ENOENT, src)
                target = self._target(d, name, record=s is None or kind == COPY) if d is not None else dst
                if s is None:
                    return original(src, target)
                if kind == COPY:  # the script's own file: really moved, inside the temporary folder
                    result = original(location, target)
                    self.map.pop(s, None)
                else:  # the user's file: copied, and hidden where it was
                    if self._real_isdir(s) and not stat_mod.S_ISLNK(self._real_lstat(s).st_mode):
                        self._orig("copytree")(s, target, dirs_exist_ok=True, symlinks=True,
                                                  copy_function=shutil.copy2)
                    else:
                        self._orig("copyfile")(s, target)
                    self.redirects.append(Redirect(name, s, target))
                    result = None
                self._forget(s)  # copies of what was beneath a moved folder went with it
                if self._real_lstat(s) is not None:
                    self.gone.add(s)
                return result
            return move

        for name in ("remove", "unlink", "rmdir"):
            self._originals.setdefault(name, getattr(os, name))
            self.patcher.set(os, name, deleter(name))
        for name in ("rename", "replace"):
            self.patcher.set(os, name, mover(name))
        original_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):  # os.makedirs and Path.mkdir call it too
            key = self._path(path, follow=False) if self.active and kwargs.get("dir_fd") is None else None
            if key is None:
                return original_mkdir(path, *args, **kwargs)
            kind, _ = self._state(key)
            if kind == COPY:
                raise _error(errno.EEXIST, path)
            parent_kind, parent_copy = self._state(os.path.dirname(key))
            if parent_kind == GONE:
                raise _error(errno.ENOENT, path)
            st = self._real_lstat(key) if kind == GONE else None
            if parent_kind == COPY or st is not None and not stat_mod.S_ISDIR(st.st_mode):
                # inside a folder that is a copy, or made again over a deleted file: the folder is a copy too
                if parent_kind == COPY and not self._real_isdir(parent_copy):
                    raise _error(errno.ENOTDIR, path)
                os.makedirs(self._copy_of(key), exist_ok=True)
                self.map[key] = self._copy_of(key)
                if kind == GONE:
                    self.gone.discard(key)
                    self.fresh.add(key)
                return None
            if st is not None:  # made again over a folder the script deleted: visible, empty
                self.gone.discard(key)
                self.fresh.add(key)
                return None
            result = original_mkdir(path, *args, **kwargs)
            self.made.add(key)
            self.created_dirs.append(key)
            return result

        self.patcher.set(os, "mkdir", mkdir)
        original_os_open = os.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def os_open(path, flags, mode=0o777, *, dir_fd=None):  # tempfile.mkstemp/NamedTemporaryFile, locks
            if self.active and dir_fd is None:
                real = self._path(path) if flags & writing else None
                if real is not None:
                    path = self._open_target(real, path, "write", keep=not flags & os.O_TRUNC,
                                             create=bool(flags & os.O_CREAT),
                                             exclusive=bool(flags & os.O_CREAT and flags & os.O_EXCL))
                elif not flags & writing:
                    path = self._read_path(path)
            return original_os_open(path, flags, mode, dir_fd=dir_fd)

        self.patcher.set(os, "open", os_open)
        original_touch = pathlib.Path.touch

        def touch(path, *args, **kwargs):  # a user file's copy is touched: not even its time changes
            real = self._path(path) if self.active else None
            if real is not None:
                path = pathlib.Path(self._open_target(real, path, "write", keep=True, create=True, exclusive=False))
            return original_touch(path, *args, **kwargs)

        self.patcher.set(pathlib.Path, "touch", touch)
