"""Library writers and deleters the protected script calls: ``shutil`` copies, ``rmtree`` and ``move``,
``torch.save``, ``logging.FileHandler``. A mixin of ``protect.Protector``: the methods use its overlay."""
from __future__ import annotations

import logging
import os
import shutil


class LibraryPatches:
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
                    if len(args) < 3:  # each file through the guarded copy2, which reads copies where they are
                        kwargs.setdefault("copy_function", shutil.copy2)
                return original(src, target, *args, **kwargs)
            return copy

        def rmtree(path, *args, **kwargs):
            key = self._path(path, follow=False) if self.active and kwargs.get("dir_fd") is None else None
            if key is None:
                return original_rmtree(path, *args, **kwargs)
            ignore = args[0] if args else kwargs.get("ignore_errors", False)
            onerror = args[1] if len(args) > 1 else kwargs.get("onerror")
            onexc = kwargs.get("onexc")
            try:
                self._delete(key, path, "rmtree")
            except OSError as exc:
                if ignore:
                    return None
                if onexc is not None:
                    return onexc(os.lstat, path, exc)
                if onerror is not None:
                    return onerror(os.lstat, path, (type(exc), exc, exc.__traceback__))
                raise
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
