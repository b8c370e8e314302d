"""``nanlint server``: a Language Server (LSP) over standard input and output.

It publishes nanlint's findings as diagnostics when a document is opened, changed (after a short pause in
typing) and saved, and offers each finding's fix, an "add ``# noqa``" quick fix and "apply all safe fixes"
(``source.fixAll.nanlint``) as code actions. Each file uses its closest configuration, as ``nanlint check``
does. The server is built on pygls (``pip install 'nanlint[server]'``), imported only when it starts, so
this module and the command load without it."""
from __future__ import annotations

import os
import sys

import click


def serve() -> None:
    """Run the language server on standard input and output until the client ends it."""
    try:
        from nanlint.server.lsp import create
    except ImportError as exc:
        click.echo(f"nanlint: error: the language server needs pygls ({exc}): pip install 'nanlint[server]'", err=True)
        sys.exit(2)
    # the protocol owns standard output: keep it for the server and send anything else printed there (by a
    # library, a stray print) to standard error, where it cannot corrupt a message
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    create().start_io(sys.stdin.buffer, stdout)


@click.command("server", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--stdio", is_flag=True, help="Talk over standard input and output. This is the only transport, and the default; the flag is accepted because some clients pass it.")
def server(stdio: bool) -> None:
    """Run nanlint as a language server for editors.

    The server talks the Language Server Protocol over standard input and output. It reports findings as
    diagnostics while you edit and offers the fixes, an "add noqa" quick fix and "apply all safe fixes" as
    code actions. It needs the server extra: pip install 'nanlint[server]'.
    """
    serve()


def main(argv: list[str] | None = None) -> None:
    """Run ``nanlint server`` (for ``python -c "from nanlint.server import main; main()"``)."""
    server.main(args=sys.argv[1:] if argv is None else argv, prog_name="nanlint server")
