"""The ``nanlint trace`` click command. torch is imported only when the command runs."""
from __future__ import annotations

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("script")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
def trace(script: str, script_args: tuple[str, ...]) -> None:
    """Run SCRIPT for one batch and report where inf/NaN is born."""
    raise click.ClickException("nanlint trace is not built yet")
