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


def _check_output(output_file: str | None, html: str | None) -> None:
    for option, path in (("--output-file", output_file), ("--html", html)):
        if path and not Path(path).resolve().parent.is_dir():  # say so before a run of minutes
            _fail(f"cannot write {path}: its folder does not exist")
        if path and Path(path).is_dir():
            _fail(f"{option} {path}: is a folder, not a file")


def _html_path(until: dict | None, output_file: str | None, html: str | None) -> str | None:
    if until is None:
        return None
    if html:
        return html
    if output_file:
        return str(Path(output_file).with_suffix(".html"))
    return None


def _execute(run, output_format: str, output_file: str | None, html: str | None = None) -> None:
    """Run (``run()`` returns a TraceResult), write the health page, render, exit with the result's code."""
    try:
        from nanlint.trace.session import Interrupted, TraceError
    except KeyboardInterrupt:
        _interrupted("SIGINT", "before the script started")
        return
    try:
        if output_format == "json" and not output_file:
            # the script's prints must not corrupt the JSON document on stdout
            with contextlib.redirect_stdout(sys.stderr):
                result = run()
        else:
            result = run()
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

        until = getattr(result, "until_nan", None)
        page = _html_path(until, output_file, html)
        if page:
            from nanlint.trace import html as html_mod

            problem = html_mod.write(page, until, result.target)
            if problem:
                result.notes = list(result.notes) + [problem]
            else:
                until["html"] = str(Path(page).resolve())
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


def _saved_script(bundle: str) -> str | None:
    """The script a bundle was saved from (its step.json; no torch needed to read it)."""
    import json

    try:
        meta = json.loads((Path(bundle) / "step.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = meta.get("script") if isinstance(meta, dict) else None
    return saved if isinstance(saved, str) and not saved.startswith("-m ") else None


def _target(script, script_args, module) -> tuple[str | None, list[str]]:
    args = list(script_args)
    if module and script:
        args.insert(0, script)
        script = None
    if args and args[0] == "--":
        args.pop(0)
    if not module and not script:
        _fail("give a SCRIPT or -m MODULE")
    return script, args


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "module", metavar="MODULE", help="Run a module as `python -m MODULE` does.")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: whatever the script chooses).")
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True, help="Optimizer steps (or batches) to run.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds (default: 300; with --until-nan: none).")
@click.option("--dtype", type=click.Choice(["float16", "bfloat16"]), help="Run the forward pass under autocast in this dtype.")
@click.option("--output-format", type=click.Choice(["full", "json"]), default="full", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--project-root", type=click.Path(file_okay=False), help="Root of the user's code (default: nearest pyproject.toml, setup.py or .git).")
@click.option("--until-nan", is_flag=True, help="Run the whole script under a cheap per-step watch; re-run the first non-finite step under the full monitor.")
@click.option("--max-steps", type=click.IntRange(min=1), help="With --until-nan: stop after this many optimizer steps.")
@click.option("--save-failing-step", metavar="DIR", help="With --until-nan: save the failing step (batch, RNG, model and optimizer state) to this new or empty folder.")
@click.option("--html", metavar="FILE", help="With --until-nan: write the health curves here (default: next to --output-file).")
def trace(script, script_args, module, device, steps, timeout, dtype, output_format, output_file, project_root,
          until_nan, max_steps, save_failing_step, html):
    """Run SCRIPT (or -m MODULE) for one step under a monitor and report where inf/NaN is born.

    Arguments after SCRIPT (or after `--`) go to the script. Exit codes: 0 no non-finite value, 1 a
    non-finite value was produced, 2 the script could not run a step (or nanlint could not trace it),
    130 interrupted by SIGINT (Ctrl-C), 143 interrupted by SIGTERM (`kill`, `timeout`, a CI cancel,
    `docker stop`): the script is stopped and the report of what ran until then is written (its result says
    "interrupted"); before the script starts, nothing is reported. The user's files are never changed, also
    when the trace is killed (SIGKILL).

    With --until-nan the whole run is watched cheaply (loss, gradients and parameters finite, once a step);
    the first step that goes non-finite is re-run under the full monitor and reported with its step number."""
    script, args = _target(script, script_args, module)
    if not until_nan:
        for option, value in (("--max-steps", max_steps), ("--save-failing-step", save_failing_step), ("--html", html)):
            if value is not None:
                _fail(f"{option} needs --until-nan")
    elif steps != 1:
        _fail("--steps cannot be combined with --until-nan (use --max-steps)")
    _check_output(output_file, html)

    def run():
        from nanlint.trace.session import TraceOptions, trace as run_trace

        options = TraceOptions(script=script, module=module, args=args, device=device, steps=steps,
                               timeout=300.0 if until_nan or timeout is None else timeout, dtype=dtype,
                               project_root=project_root)
        if not until_nan:
            return run_trace(options)
        from nanlint.trace.until_nan import UntilNanOptions, until_nan as run_until

        return run_until(UntilNanOptions(options, max_steps=max_steps, timeout=timeout, save_dir=save_failing_step))

    _execute(run, output_format, output_file, html)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                 "help_option_names": ["-h", "--help"]})
@click.argument("bundle", metavar="DIR")
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "module", metavar="MODULE", help="Run a module as `python -m MODULE` does.")
@click.option("--device", help="cpu, cuda, cuda:N or mps (default: whatever the script chooses).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True, help="Stop after this many seconds.")
@click.option("--output-format", type=click.Choice(["full", "json"]), default="full", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--project-root", type=click.Path(file_okay=False), help="Root of the user's code (default: nearest pyproject.toml, setup.py or .git).")
def replay(bundle, script, script_args, module, device, timeout, output_format, output_file, project_root):
    """Re-run the step saved in DIR (by `trace --until-nan --save-failing-step DIR`) under the full monitor.

    SCRIPT runs again, but its first training step is the saved one: same batch, RNG states, model and
    optimizer state; the steps before it are not run. Without SCRIPT, the saved run's script; without ARGS,
    its arguments. Exit codes as `nanlint trace`."""
    if not script and not module:
        script = _saved_script(bundle)
    script, args = _target(script, script_args, module)
    _check_output(output_file, None)

    def run():
        from nanlint.trace.session import TraceError, TraceOptions

        try:
            from nanlint.trace.bundle import BundleError, load
        except ImportError:
            raise TraceError("nanlint replay needs PyTorch: pip install 'nanlint[trace]'") from None
        try:
            payload = load(bundle)
        except BundleError as exc:
            raise TraceError(str(exc)) from None
        from nanlint.trace import replay as replay_mod

        used = args if args or script_args else list(payload.get("args") or [])
        result = replay_mod.run(payload, TraceOptions(script=script, module=module, args=used, device=device,
                                                      timeout=timeout, project_root=project_root))
        result.replayed["bundle"] = bundle
        return result

    _execute(run, output_format, output_file)
