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


__all__ = ["Finding", "Fix", "Span", "check_paths", "check_source", "__version__"]
