"""Which configuration each file uses, as in ruff: the closest ``nanlint.toml``, or ``pyproject.toml`` with a
``[tool.nanlint]`` table, in the file's folder or above it; or one configuration for every file when it is
given (``--config``, ``--isolated``, a ``Config`` passed to the API). The command line's selection and
options are applied on top of each file's configuration."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

from nanlint.config import Config, find_config_file, from_table


class Configs:
    def __init__(self, fixed: Config | None = None, adjust: Callable[[Config], Config] | None = None):
        self._fixed = fixed
        self._adjust = adjust or (lambda config: config)
        self._by_folder: dict[str, Config] = {}
        self._by_file: dict[str | None, Config] = {}  # one Config object per configuration file

    @classmethod
    def of(cls, config: "Config | Configs | None") -> "Configs":
        if isinstance(config, Configs):
            return config
        return cls(fixed=config) if config is not None else cls()

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    def for_path(self, path: str) -> Config:
        """The configuration of ``path`` (a file or a folder; ``-`` is the current folder). Raises
        :class:`nanlint.config.ConfigError` for a configuration file that cannot be used."""
        if self._fixed is not None:
            return self._fixed
        absolute = os.path.abspath(path if path != "-" else ".")
        folder = absolute if os.path.isdir(absolute) else os.path.dirname(absolute)
        config = self._by_folder.get(folder)
        if config is None:
            found = find_config_file(Path(folder))
            key = str(found[0]) if found else None
            config = self._by_file.get(key)
            if config is None:
                config = self._adjust(from_table(found[1], found[0]) if found else Config(root=str(Path.cwd())))
                self._by_file[key] = config
            self._by_folder[folder] = config
        return config


AnyConfig = Union[Config, Configs, None]
