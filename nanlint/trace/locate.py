"""Which line of the user's code is running: the first frame, walking outwards, whose file lies under the
project root (not site-packages, not nanlint itself). "User code" is the project, not "not torch", so that
a bug inside a model is blamed on the model file and not on Lightning or transformers internals."""
from __future__ import annotations

import os
import sys
from types import CodeType, FrameType

NANLINT_DIR = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep


_USER: dict[str, dict[str, str | None]] = {}  # project root -> {co_filename -> real path, or None}


class Locator:
    def __init__(self, project_root: str) -> None:
        self.root = os.path.realpath(project_root).rstrip(os.sep) + os.sep
        # co_filename -> real path, or None when not user code (shared by the locators of one root: resolving a
        # path costs system calls, and a file does not move while the process runs)
        self._user: dict[str, str | None] = _USER.setdefault(self.root, {})
        self.codes: set[CodeType] = set()  # code objects of user frames that ran

    def user_file(self, co_filename: str) -> str | None:
        real = self._user.get(co_filename, "")
        if real != "":
            return real
        real = None
        if not co_filename.startswith("<"):
            path = os.path.realpath(co_filename)
            if (path.startswith(self.root) and not path.startswith(NANLINT_DIR)
                    and "site-packages" not in path and "dist-packages" not in path):
                real = path
        self._user[co_filename] = real
        return real

    def site(self, frame: FrameType | None) -> tuple[str, int] | None:
        """(real path, line) of the innermost user frame at or above ``frame``."""
        cache = self._user
        f = frame
        while f is not None:
            code = f.f_code
            real = cache.get(code.co_filename, "")
            if real == "":
                real = self.user_file(code.co_filename)
            if real is not None:
                if code not in self.codes:
                    self._remember(f)
                return real, f.f_lineno
            f = f.f_back
        return None

    def here(self) -> tuple[str, int] | None:
        return self.site(sys._getframe(1))

    def _remember(self, frame: FrameType | None) -> None:
        """Record every user code object on the stack: their functions ran (for NOT EXECUTED)."""
        while frame is not None:
            if self.user_file(frame.f_code.co_filename) is not None:
                self.codes.add(frame.f_code)
            frame = frame.f_back

    def ran(self, filename: str, line: int) -> bool:
        """Whether a user function whose body holds ``line`` of ``filename`` ran."""
        for code in self.codes:
            if self._user.get(code.co_filename) == filename and any(l == line for _, _, l in code.co_lines()):
                return True
        return False
