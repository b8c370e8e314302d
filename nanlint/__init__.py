"""nanlint: find where PyTorch model and training code will produce inf/NaN, before a costly run does."""
from nanlint.findings import Finding, Fix, Span

__version__ = "0.1.0"


def check_source(source, filename="<stdin>", config=None):
    """Findings for one source text (str or bytes). See :func:`nanlint.api.check_source`."""
    from nanlint.api import check_source as _check_source

    return _check_source(source, filename, config)


def check_paths(paths, config=None, force_exclude=False):
    """Findings for every Python file under ``paths``. See :func:`nanlint.api.check_paths`."""
    from nanlint.api import check_paths as _check_paths

    return _check_paths(paths, config, force_exclude)


def __getattr__(name):
    """``nanlint.watch`` and ``nanlint.NonFiniteError`` import torch: only when they are used."""
    if name in ("watch", "Watch", "NonFiniteError"):
        from nanlint.trace import watchapi

        return getattr(watchapi, name)
    if name in ("lightning_callback", "hf_callback"):
        from nanlint.trace import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module 'nanlint' has no attribute {name!r}")


__all__ = ["Finding", "Fix", "NonFiniteError", "Span", "Watch", "check_paths", "check_source", "hf_callback",
           "lightning_callback", "watch", "__version__"]
