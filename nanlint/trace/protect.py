"""Nothing the user owns is lost: while the script runs, writes, moves and deletions of files outside a
temporary folder are redirected into it.

Intercepted: ``builtins.open`` / ``io.open`` in a writing mode (also ``pathlib.Path.open``/``write_text``/
``write_bytes``, ``np.save``/``np.savez`` and ``zipfile``, which go through them), ``torch.save``,
``os.remove``/``unlink``/``rename``/``replace``/``rmdir``, ``shutil.move``/``rmtree``/``copy``/``copy2``/
``copyfile``/``copytree``, ``logging.FileHandler``. A redirected file reads back from its copy. A deleted user
file or folder is renamed aside in its own folder and put back after the run.
Directories the script creates (``os.mkdir``/``os.makedirs``/``Path.mkdir``) are created, so that its own checks
and listings behave, and removed after the run when they are still empty (writes into them were redirected);
``Path.touch`` of a new file is redirected too.
``os.open`` for writing (``tempfile.mkstemp``/``NamedTemporaryFile`` in the user's folder, lock files) is
redirected like ``open``.
Not intercepted: writes by C extensions and native libraries that open files themselves (``tensorboard``'s C
writer, HDF5...), subprocesses."""
from __future__ import annotations

import builtins
import io
import logging
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass

from nanlint.trace.patches import Patcher

SYSTEM_PREFIXES = ("/dev/", "/proc/", "/sys/")


@dataclass
class Redirect:
    operation: str  # "write", "append", "torch.save", "remove", "rename", "rmtree", "copy", "move", "log"
    path: str  # the user's path
    to: str | None  # where it went instead (None: skipped, e.g. a deletion)

    def to_dict(self) -> dict:
        return {"operation": self.operation, "path": self.path, "to": self.to}


class Protector:
    def __init__(self, patcher: Patcher, keep_dir: str | None = None) -> None:
        self.patcher = patcher
        # made before any patch is installed (mkdtemp inside a patched os.open would re-enter tempfile's lock);
        # removed after the run when nothing was redirected into it
        self._made_dir = keep_dir is None
        self._dir = keep_dir or tempfile.mkdtemp(prefix="nanlint-trace-")
        self.real_dir = os.path.realpath(self._dir)
        self.map: dict[str, str] = {}  # user path -> redirected copy
        self.redirects: list[Redirect] = []
        self.active = False
        self._originals: dict[str, object] = {}
        self.created_dirs: list[str] = []  # user directories the script created, in creation order
        self.hidden: list[tuple[str, str]] = []  # (user path, where it waits) for deletions, put back after

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
    def _path(self, file) -> str | None:
        """Absolute path of a path-like that the protector guards, else None (fds, tmp, /dev/null...)."""
        if isinstance(file, int) or not isinstance(file, (str, bytes, os.PathLike)):
            return None
        try:
            path = os.fspath(file)
        except TypeError:
            return None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        path = os.path.abspath(path)
        real = os.path.realpath(path)
        if real.startswith(self.real_dir + os.sep) or real == self.real_dir or real.startswith(SYSTEM_PREFIXES):
            return None
        return real

    def _target(self, path: str, operation: str, copy_existing: bool = False, record: bool = True) -> str:
        target = self.map.get(path)
        if target is None:
            target = os.path.join(self.dir, path.lstrip(os.sep))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if copy_existing and os.path.isfile(path):
                self._orig("copyfile")(path, target)
            self.map[path] = target
            if record:
                self.redirects.append(Redirect(operation, path, target))
        return target

    def _read_path(self, file):
        path = self._path(file)
        return self.map.get(path, file) if path else file

    def _orig(self, name):
        return self._originals[name]

    # ---- install ---------------------------------------------------------------------------------
    def install(self) -> None:
        self.active = True
        p = self.patcher
        self._originals.update(open=builtins.open, copyfile=shutil.copyfile, copy2=shutil.copy2,
                               copytree=shutil.copytree, remove=os.remove, rename=os.rename, replace=os.replace,
                               rmdir=os.rmdir, move=shutil.move)
        original_open = builtins.open

        def guarded_open(file, mode="r", *args, **kwargs):
            if self.active:
                if any(c in mode for c in "wax+"):
                    path = self._path(file)
                    if path is not None:
                        keep = "a" in mode or "+" in mode and "w" not in mode
                        file = self._target(path, "append" if "a" in mode else "write", copy_existing=keep)
                else:
                    file = self._read_path(file)
            return original_open(file, mode, *args, **kwargs)

        p.set(builtins, "open", guarded_open)
        p.set(io, "open", guarded_open)
        self._patch_os()
        self._patch_shutil()
        self._patch_torch()
        self._patch_logging()

    def _hide(self, real: str, operation: str) -> None:
        """A deletion of a user's file or folder: renamed aside in its own folder (instant, same file system)
        so that the script sees it gone (``rmtree(out); makedirs(out)`` works), and put back after the run."""
        hidden = f"{real}.nanlint-hidden-{os.getpid()}"
        n = 0
        while os.path.lexists(hidden):
            n += 1
            hidden = f"{real}.nanlint-hidden-{os.getpid()}-{n}"
        self._orig("rename")(real, hidden)
        self.hidden.append((real, hidden))
        self.redirects.append(Redirect(operation, real, None))

    def remove(self) -> None:
        """Stop redirecting; remove the directories the script created that are still empty, then put back
        what the script deleted."""
        self.active = False
        self._remove_created_dirs()
        for real, hidden in reversed(self.hidden):
            if os.path.lexists(real):  # something unredirected was written there: keep both, say where
                self.redirects.append(Redirect("kept-aside", real, hidden))
            else:
                self._orig("rename")(hidden, real)
        self.hidden.clear()
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

    def _patch_os(self) -> None:
        def deleter(name):
            original = self._originals[name]

            def delete(path, *args, **kwargs):
                real = self._path(path) if self.active and not args and not kwargs else None
                if real is None:
                    return original(path, *args, **kwargs)
                if real in self.map:
                    return original(self.map.pop(real), *args, **kwargs)
                if not os.path.lexists(real):
                    return original(path)  # raises the usual FileNotFoundError
                self._hide(real, "remove" if name != "rmdir" else "rmdir")
                return None
            return delete

        def mover(name):
            original = self._originals[name]

            def move(src, dst, *args, **kwargs):
                if not self.active or args or kwargs:
                    return original(src, dst, *args, **kwargs)
                s, d = self._path(src), self._path(dst)
                if d is None and s is None:
                    return original(src, dst)
                target = self._target(d, name, record=s is None or s in self.map) if d is not None else dst
                if s is not None and s in self.map:
                    result = original(self.map.pop(s), target)
                elif s is not None:
                    if os.path.isdir(s):
                        self._orig("copytree")(s, target, dirs_exist_ok=True)
                    else:
                        self._orig("copyfile")(s, target)  # the original stays where it is
                    self.redirects.append(Redirect(name, s, target))
                    result = None
                else:
                    result = original(src, target)
                return result
            return move

        for name in ("remove", "unlink", "rmdir"):
            self._originals.setdefault(name, getattr(os, name))
            self.patcher.set(os, name, deleter(name))
        for name in ("rename", "replace"):
            self.patcher.set(os, name, mover(name))
        original_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):  # os.makedirs and Path.mkdir call it too
            real = self._path(path) if self.active and "dir_fd" not in kwargs else None
            result = original_mkdir(path, *args, **kwargs)
            if real is not None:
                self.created_dirs.append(real)
            return result

        self.patcher.set(os, "mkdir", mkdir)
        original_os_open = os.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

        def os_open(path, flags, mode=0o777, *, dir_fd=None):  # tempfile.mkstemp/NamedTemporaryFile, locks
            if self.active and dir_fd is None:
                real = self._path(path) if flags & writing else None
                if real is not None:
                    path = self._target(real, "write", copy_existing=not flags & os.O_TRUNC)
                elif not flags & writing:
                    path = self._read_path(path)
            return original_os_open(path, flags, mode, dir_fd=dir_fd)

        self.patcher.set(os, "open", os_open)
        original_touch = pathlib.Path.touch

        def touch(path, *args, **kwargs):
            real = self._path(path) if self.active else None
            if real is not None and (real in self.map or not os.path.lexists(real)):
                return original_touch(pathlib.Path(self._target(real, "write")), *args, **kwargs)
            return original_touch(path, *args, **kwargs)

        self.patcher.set(pathlib.Path, "touch", touch)

    def _patch_shutil(self) -> None:
        def copier(name):
            original = self._originals.get(name) or getattr(shutil, name)

            def copy(src, dst, *args, **kwargs):
                if not self.active:
                    return original(src, dst, *args, **kwargs)
                src = self._read_path(src)
                d = self._path(dst)
                if d is None:
                    return original(src, dst, *args, **kwargs)
                if os.path.isdir(d) and name != "copytree":
                    d = os.path.join(d, os.path.basename(os.fspath(src)))
                target = self._target(d, "copy")
                if name == "copytree":
                    kwargs["dirs_exist_ok"] = True
                return original(src, target, *args, **kwargs)
            return copy

        def rmtree(path, *args, **kwargs):
            real = self._path(path) if self.active else None
            if real is None:
                return original_rmtree(path, *args, **kwargs)
            if not os.path.lexists(real):
                return original_rmtree(path, *args, **kwargs)  # the usual FileNotFoundError
            self._hide(real, "rmtree")
            return None

        def move(src, dst, *args, **kwargs):
            if not self.active:
                return original_move(src, dst, *args, **kwargs)
            return os.rename(src, dst)  # the guarded rename: copies user files, moves redirected ones

        original_rmtree, original_move = shutil.rmtree, shutil.move
        for name in ("copy", "copy2", "copyfile", "copytree"):
            self.patcher.set(shutil, name, copier(name))
        self.patcher.set(shutil, "rmtree", rmtree)
        self.patcher.set(shutil, "move", move)

    def _patch_torch(self) -> None:
        import torch
        import torch.serialization

        original = torch.save

        def save(obj, f, *args, **kwargs):
            path = self._path(f) if self.active else None
            if path is not None:
                f = self._target(path, "torch.save")
            return original(obj, f, *args, **kwargs)

        self.patcher.set(torch, "save", save)
        self.patcher.set(torch.serialization, "save", save)

    def _patch_logging(self) -> None:
        protector = self

        def init_wrapper(original):
            def __init__(self, filename, mode="a", *args, **kwargs):
                path = protector._path(filename) if protector.active else None
                if path is not None:
                    filename = protector._target(path, "log", copy_existing="a" in mode)
                return original(self, filename, mode, *args, **kwargs)
            return __init__

        self.patcher.wrap(logging.FileHandler, "__init__", init_wrapper)
