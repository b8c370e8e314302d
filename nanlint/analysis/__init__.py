"""The static analysis: a value domain (:mod:`domain`), an op table (:mod:`optable`) with the transfer of
each op family, flow and guards (:mod:`flow`, :mod:`guards`), calls into the file's own code (:mod:`calls`),
and the walk that runs the rules (:mod:`walker`, :mod:`run`). Read a module at a time; this package's
``__init__`` stays empty of imports so that each module loads alone."""
from __future__ import annotations


def analyze(source, filename, options, compiles=False):
    from nanlint.analysis.run import analyze as _analyze

    return _analyze(source, filename, options, compiles)


def __getattr__(name: str):
    if name in ("FileContext",):
        from nanlint.analysis.context import FileContext

        return FileContext
    if name in ("parse_without_validation",):
        from nanlint.analysis.run import parse_without_validation

        return parse_without_validation
    raise AttributeError(f"module 'nanlint.analysis' has no attribute {name!r}")
