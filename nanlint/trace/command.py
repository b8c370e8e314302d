"""The ``nanlint trace`` click command. torch is imported only when the command runs (``nanlint check`` never
imports it)."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click


def _fail(message: str) -> None:
    click.echo(f"nanlint: error: {message}", err=True)
    sys.exit(2)


SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # as nanlint.trace.session (not imported: it is lazy)


def _interrupted(signal_name: str, when: str) -> None:
    click.echo(f"nanlint: interrupted by {signal_name} {when}: no report", err=True)
    sys.exit(SIGNAL_EXIT_CODES[signal_name])


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "module", metavar="MODULE", help="Run a module as `python -m MODULE` does.")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: whatever the script chooses).")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True, help="Optimizer steps (or batches) to run.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True, help="Stop after this many seconds.")
@click.option("--dtype", type=click.Choice(["float16", "bfloat16"]), help="Run the forward pass under autocast in this dtype.")
@click.option("--output-format", type=click.Choice(["full", "json"]), default="full", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--project-root", type=click.Path(file_okay=False), help="Root of the user's code (default: nearest pyproject.toml, setup.py or .git).")
def trace(script, script_args, module, device, steps, timeout, dtype, output_format, output_file, project_root):
    """Run SCRIPT (or -m MODULE) for one step under a monitor and report where inf/NaN is born.

    Arguments after SCRIPT (or after `--`) go to the script. Exit codes: 0 no non-finite value, 1 a
    non-finite value was produced, 2 the script could not run a step (or nanlint could not trace it),
    130 interrupted by SIGINT (Ctrl-C), 143 interrupted by SIGTERM (`kill`, `timeout`, a CI cancel,
    `docker stop`): the script is stopped and the report of what ran until then is written (its result says
    "interrupted"); before the script starts, nothing is reported. The user's files are never changed, also
    when the trace is killed (SIGKILL)."""
    args = list(script_args)
    if module and script:
        args.insert(0, script)
        script = None
    if args and args[0] == "--":
        args.pop(0)
    if not module and not script:
        _fail("give a SCRIPT or -m MODULE")
    if output_file and not Path(output_file).resolve().parent.is_dir():  # say so before a run of minutes
        _fail(f"cannot write {output_file}: its folder does not exist")
    try:
        from nanlint.trace.session import Interrupted, TraceError, TraceOptions, trace as run_trace
    except KeyboardInterrupt:
        _interrupted("SIGINT", "before the script started")
        return

    options = TraceOptions(script=script, module=module, args=args, device=device, steps=steps, timeout=timeout,
                           dtype=dtype, project_root=project_root)
    try:
        if output_format == "json" and not output_file:
            # the script's prints must not corrupt the JSON document on stdout
            with contextlib.redirect_stdout(sys.stderr):
                result = run_trace(options)
        else:
            result = run_trace(options)
    except TraceError as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:  # before the script started: there is nothing to report
        _interrupted("SIGINT", "before the script started")
        return
    except Interrupted as exc:
        _interrupted(exc.signal_name, "again while the report was made" if exc.again else "before the script started")
        return
    except Exception as exc:  # nanlint's own failure: one line, never a traceback
        _fail(f"nanlint failed while tracing (please report it): {type(exc).__name__}: {exc}")
        return
    try:
        from nanlint.trace.report import render_full, render_json

        text = render_json(result) if output_format == "json" else render_full(result)
        if output_file:
            try:
                Path(output_file).write_text(text, encoding="utf-8")
            except OSError as exc:
                _fail(f"cannot write {output_file}: {exc.strerror or exc}")
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        _interrupted("SIGINT", "while the report was written")
        return
    except Exception as exc:
        _fail(f"nanlint failed while writing the report (please report it): {type(exc).__name__}: {exc}")
        return
    sys.exit(result.exit_code)
