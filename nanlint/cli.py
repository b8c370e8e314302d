"""The command line: ``nanlint check``, ``rule``, ``rules``, ``show-settings`` and ``trace``.

Exit codes follow ruff: 0 clean, 1 findings, 2 usage, configuration or internal error; 130 interrupted. Nothing here prints a
traceback: every failure is one ``nanlint: error: ...`` line.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import replace
from typing import NoReturn

import click

from nanlint import __version__
from nanlint.catalog import CatalogError, load_catalog
from nanlint.config import Config, ConfigError, load
from nanlint.findings import Applicability, Finding
from nanlint.report import FORMATS, HUMAN


#: exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it); never 1, which means findings
INTERRUPTED = 130


def fail(message: str) -> NoReturn:
    click.echo(f"nanlint: error: {message}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turns an unexpected exception in any command into one line and exit 2, and a closed pipe
    (``nanlint check | head``) into a quiet exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except (KeyboardInterrupt, click.Abort):
            click.echo("nanlint: interrupted", err=True)
            sys.exit(INTERRUPTED)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
            fail(f"internal error: {type(exc).__name__}: {exc}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nanlint")
def main() -> None:
    """Find where PyTorch model and training code will produce inf/NaN."""


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s.strip() for item in values for s in item.split(",") if s.strip())


def _configs(config_file: str | None, isolated: bool, overrides: dict):
    """Each file's configuration (the closest file above it, or ``--config`` / ``--isolated`` for all) with
    the command line's on top: a selection layer, as in ruff (``--select`` starts afresh,
    ``--extend-select`` and ``--ignore`` adjust the file's selection), then ``--preview`` and
    ``--target-precision``."""
    from nanlint import selection
    from nanlint.hierarchy import Configs

    docs = _catalog()
    select = _split(overrides.get("select") or ())
    extend_select = _split(overrides.get("extend_select") or ())
    ignore = _split(overrides.get("ignore") or ())
    try:
        for option, values in (("--select", select), ("--extend-select", extend_select), ("--ignore", ignore)):
            selection.validate(values, docs, option)
    except selection.SelectionError as exc:
        fail(str(exc))

    def adjust(config: Config) -> Config:
        changes: dict = {}
        if select or extend_select or ignore:
            changes["overrides"] = (*config.overrides, selection.Layer(select or None, extend_select, ignore))
        if overrides.get("preview"):
            changes["preview"] = True
        if overrides.get("strict"):
            changes["strict"] = True
        if overrides.get("target_precision"):
            changes["target_precision"] = overrides["target_precision"]
        return replace(config, **changes) if changes else config

    try:
        if config_file is not None or isolated:
            return Configs(fixed=adjust(load(config_file, isolated)))
        configs = Configs(adjust=adjust)
        configs.for_path(".")  # a broken configuration here is an error before any work
        return configs
    except (ConfigError, CatalogError) as exc:
        fail(str(exc))


@main.command(short_help="Check files, folders and notebooks for inf/NaN hazards.")
@click.argument("paths", nargs=-1, type=str)
@click.option("--select", multiple=True, help="Rule codes, prefixes (NAN1), names or ALL to enable (replaces the configured set).")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--preview", is_flag=True, help="Enable preview rules selected by prefix or ALL.")
@click.option("--strict", is_flag=True, help="Also report hazards that only degenerate inputs reach (an empty graph, a constant schedule, a diverged log-variance).")
@click.option("--output-format", type=click.Choice(sorted(FORMATS)), default="full", show_default=True, help="How to print findings.")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False), help="Write the report to this file instead of standard output.")
@click.option("--fix", is_flag=True, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply unsafe fixes (with --fix or --diff).")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff instead of writing them.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
@click.option("--config", "config_file", type=str, help="Configuration file (pyproject.toml or nanlint.toml).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--force-exclude", is_flag=True, help="Apply excludes and .gitignore to paths named on the command line too.")
@click.option("--stdin-filename", type=str, help="The file name to report (and match configuration against) for `-`.")
@click.option("--target-precision", type=click.Choice(["float32", "float16", "bfloat16"]), help="Assume this working precision.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel processes (default: one per CPU).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write .nanlint_cache/.")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` to every line with a finding (to adopt nanlint on existing code).")
@click.option("--show-files", is_flag=True, help="Print the files that would be checked, one per line, and stop.")
def check(paths, select, extend_select, ignore, preview, strict, output_format, output_file, fix, unsafe_fixes, diff, statistics, exit_zero, quiet, config_file, isolated, force_exclude, stdin_filename, target_precision, jobs, no_cache, add_noqa, show_files):
    """Check PATHS (default: the current directory; `-`: standard input) for inf/NaN hazards."""
    from nanlint import api

    config = _configs(config_file, isolated, dict(select=select, extend_select=extend_select, ignore=ignore, preview=preview, strict=strict, target_precision=target_precision))
    if output_file:
        _check_writable(output_file)  # before a check of minutes, not after
    paths = list(paths) or (["-"] if stdin_filename else ["."])
    if show_files:
        _show_files(paths, config, force_exclude)
    try:
        from nanlint.progress import Progress

        result = api.run(paths, config, force_exclude, stdin_filename=stdin_filename, jobs=jobs, cache=False if no_cache else None,
                         progress=Progress.for_terminal(quiet))
    except (ConfigError, CatalogError) as exc:  # a nested project's configuration file
        fail(str(exc))
    findings = result.findings
    texts = _texts(findings, result)
    color = _use_color(output_file)
    if add_noqa:
        _add_noqa(findings, texts, result, quiet)

    fixed, written = 0, True
    if fix or diff:
        stdin_name = result.stdin.filename if result.stdin is not None else None
        outcome = _apply_fixes(findings, texts, config, unsafe_fixes, stdin_name, result.stdin)
        result.errors.extend(outcome.errors)
        if diff:
            click.echo(b"".join(outcome.diffs), nl=False)  # bytes, in each file's own encoding
            if not quiet:
                n = outcome.count
                click.echo(f"Would fix {n} problem{'s' if n != 1 else ''}." if n else "No fixes available.", err=True)
            _report_errors(result.errors)
            sys.exit(2 if result.errors else 1 if outcome.count and not exit_zero else 0)
        written = _write_fixed(outcome)
        findings, fixed = outcome.remaining, outcome.count
        texts.update({name: fixed_text for name, (_, fixed_text) in outcome.fixed_texts.items() if name in outcome.per_file})
        if result.stdin is not None and result.stdin.text is not None:
            # as ruff does: with `-`, the (fixed) source goes to stdout and the report to stderr
            _echo(_stdin_output(result.stdin, outcome.stdin_text))
            if outcome.stdin_text is not None:
                texts[stdin_name] = outcome.stdin_text
            text = _render(findings, texts, output_format, statistics, quiet, fixed, color=False)
            click.echo(text, nl=False, err=True)
            _report_errors(result.errors)
            _exit(findings, result.errors, exit_zero, written)

    text = _render(findings, texts, output_format, statistics, quiet, fixed, color)
    if result.files == 0 and not quiet:
        click.echo("nanlint: warning: no Python files found under the given paths", err=True)
    if output_file:
        try:
            with open(output_file, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            fail(f"cannot write {output_file}: {exc.strerror or exc}")
    else:
        _echo(text, color=color)
    _report_errors(result.errors)
    _exit(findings, result.errors, exit_zero, written)


def _show_files(paths: list[str], configs, force_exclude: bool) -> NoReturn:
    from nanlint.discovery import discover

    try:
        for filename in discover(paths, configs, force_exclude):
            click.echo(filename)
    except (ConfigError, CatalogError) as exc:
        fail(str(exc))
    sys.exit(0)


def _add_noqa(findings: list[Finding], texts: dict[str, str], result, quiet: bool) -> NoReturn:
    """Write ``# noqa`` directives for every finding (files only, not standard input); exit 0, or 2 when a
    file could not be written."""
    from nanlint.add_noqa import add_noqa
    from nanlint.source import read

    stdin_name = result.stdin.filename if result.stdin is not None else None
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        if f.filename != stdin_name:
            by_file.setdefault(f.filename, []).append(f)
    added = skipped = 0
    ok = True
    for filename, file_findings in sorted(by_file.items()):
        text = texts.get(filename)
        if text is None:
            continue
        new_text, n, k = add_noqa(text, file_findings)
        skipped += k
        if new_text == text:
            continue
        if _write_file(filename, read(filename), new_text):
            added += n
        else:
            ok = False
    if not quiet:
        click.echo(f"Added {added} noqa directive{'s' if added != 1 else ''}.", err=True)
        if skipped:
            click.echo(f"{skipped} line{'s' if skipped != 1 else ''} could not take a comment (inside a multi-line "
                       "string, after a backslash continuation, or with an invalid noqa) and still report.", err=True)
    _report_errors(result.errors)
    sys.exit(0 if ok and not result.errors else 2)


def _check_writable(output_file: str) -> None:
    """Fail now if ``output_file`` cannot be written: a folder, a missing or unwritable folder, a read-only
    file. The file itself is not touched until the report is ready."""
    path = os.path.abspath(output_file)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        fail(f"cannot write {output_file}: it is a directory")
    if not os.path.isdir(folder):
        fail(f"cannot write {output_file}: its folder does not exist")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            fail(f"cannot write {output_file}: permission denied")
    elif not os.access(folder, os.W_OK | os.X_OK):
        fail(f"cannot write {output_file}: its folder is not writable")


def _stdin_output(stdin, fixed: str | None) -> str:
    """What ``--fix -`` writes to standard output: the fixed source, or for a notebook its fixed JSON."""
    if stdin.notebook is None:
        return fixed if fixed is not None else stdin.text
    from nanlint import notebook

    data = notebook.write_back(stdin.notebook, fixed) if fixed is not None else stdin.notebook
    return data.decode("utf-8")


def _echo(text: str, color: bool = False) -> None:
    click.echo(text, nl=False, color=color)


def _exit(findings: list[Finding], errors: list, exit_zero: bool, written: bool = True) -> NoReturn:
    if errors or not written:
        sys.exit(2)
    sys.exit(1 if findings and not exit_zero else 0)


def _report_errors(errors) -> None:
    for error in errors:
        click.echo(f"nanlint: error: {error.filename}: rule {error.rule} failed: {error.message}", err=True)
    if errors:
        click.echo("nanlint: error: internal errors above; please report them. Other findings are still shown.", err=True)


def _texts(findings: list[Finding], result) -> dict[str, str]:
    """The source text of each file with findings (for the source line under a finding, and for fixes)."""
    from nanlint.source import read

    texts: dict[str, str] = {}
    stdin_name = result.stdin.filename if result.stdin is not None else None
    for name in {f.filename for f in findings}:
        if name == stdin_name:
            if result.stdin.text is not None:
                texts[name] = result.stdin.text
            continue
        text = read(name).text
        if text is not None:
            texts[name] = text
    return texts


def _render(findings, texts, output_format, statistics, quiet, fixed, color) -> str:
    if statistics:
        text = _statistics(findings, output_format)
    else:
        text = FORMATS[output_format](findings, texts, color=color)
    if output_format in HUMAN and not quiet:
        text += _summary(findings, fixed)
    return text


def _statistics(findings: list[Finding], output_format: str) -> str:
    """Findings per rule, most frequent first (as ``ruff --statistics``)."""
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = {f.code for f in findings if f.fix is not None and f.fix.applicability is Applicability.SAFE}
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if output_format == "json":
        import json

        data = [{"code": code, "name": names[code], "count": n, "fixable": code in fixable} for code, n in rows]
        return json.dumps(data, indent=2) + "\n"
    width = max((len(str(n)) for _, n in rows), default=1)
    return "".join(f"{n:>{width}}\t{code}\t{'[*] ' if code in fixable else ''}{names[code]}\n" for code, n in rows)


def _summary(findings: list[Finding], fixed: int) -> str:
    """The closing lines; the last one is always ``Found N problems.`` or ``All checks passed!``."""
    out = ""
    if fixed:
        out += f"Fixed {fixed} problem{'s' if fixed != 1 else ''}.\n"
    if not findings:
        return out + "All checks passed!\n"
    fixable = sum(1 for f in findings if f.fix is not None and f.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for f in findings if f.fix is not None and f.fix.applicability is Applicability.UNSAFE)
    if fixable:
        out += f"[*] {fixable} fixable with the `--fix` option.\n"
    if unsafe:
        out += f"{unsafe} more fixable with `--fix --unsafe-fixes`.\n"
    n = len(findings)
    return out + f"Found {n} problem{'s' if n != 1 else ''}.\n"


def _use_color(output_file: str | None) -> bool:
    """Colour only on a terminal; NO_COLOR (any non-empty value) turns it off, FORCE_COLOR on."""
    if output_file or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class _FixOutcome:
    def __init__(self) -> None:
        self.remaining: list[Finding] = []
        self.count = 0
        self.diffs: list[bytes] = []
        self.fixed_texts: dict = {}  # filename -> (SourceText as read, fixed text)
        self.stdin_text: str | None = None  # the fixed standard input, if it changed
        self.errors: list = []
        self.per_file: dict = {}  # filename -> (fixes applied, findings before, findings after)

    def unfixed(self, filename: str) -> None:
        """``filename`` could not be written: its findings are those before the fixes, none counted."""
        applied, before, after = self.per_file.pop(filename)
        self.count -= applied
        gone = {id(f) for f in after}
        self.remaining = sorted([f for f in self.remaining if id(f) not in gone] + before, key=Finding.sort_key)


def _apply_fixes(findings: list[Finding], texts: dict[str, str], config, unsafe: bool, stdin_name: str | None,
                 stdin_source=None) -> _FixOutcome:
    """Apply fixes file by file, re-checking after each round (a fix can uncover or move others)."""
    from nanlint import api
    from nanlint.fixes import apply_edits, fix_diff
    from nanlint.source import read

    outcome = _FixOutcome()
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        by_file.setdefault(f.filename, []).append(f)
    for filename, file_findings in sorted(by_file.items()):
        original_text = texts.get(filename)
        if original_text is None:
            outcome.remaining.extend(file_findings)
            continue
        text, current, applied_here = original_text, file_findings, 0
        for _ in range(10):  # stop when stable
            new_text, applied = apply_edits(text, current, unsafe)
            if not applied or new_text == text:
                break
            outcome.count += applied
            applied_here += applied
            text = new_text
            checked = api.analyze_text(text, filename, config)
            outcome.errors.extend(checked.errors)
            current = checked.findings
        outcome.remaining.extend(current)
        if text == original_text:
            continue
        source = stdin_source if filename == stdin_name else read(filename)
        if source is not None and source.notebook is not None:
            from nanlint import notebook

            outcome.diffs.append(notebook.diff(filename, source.notebook, text).encode("utf-8"))
        else:
            outcome.diffs.append(fix_diff(filename, source, original_text, text))
        outcome.per_file[filename] = (applied_here, file_findings, current)
        if filename == stdin_name:
            outcome.stdin_text = text
        else:
            outcome.fixed_texts[filename] = (source, text)
    outcome.remaining.sort(key=Finding.sort_key)
    return outcome


def _write_fixed(outcome: _FixOutcome) -> bool:
    """Write every fixed file; one that cannot be written is reported, keeps its findings, and does not stop
    the others. Whether all were written."""
    ok = True
    for filename, (original, text) in outcome.fixed_texts.items():
        if not _write_file(filename, original, text):
            ok = False
            outcome.unfixed(filename)
    return ok


def _write_file(filename: str, original, text: str) -> bool:
    """Write a user's file atomically (:func:`nanlint.source.write`); a failure is one line on stderr and the
    file stays as it was. Whether it was written."""
    import signal

    from nanlint.source import write

    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit, a write fails with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        write(filename, original, text)
    except (OSError, UnicodeEncodeError) as exc:
        message = str(exc) if isinstance(exc, OSError) and exc.args else f"cannot write {filename}: {exc}; the file is unchanged"
        click.echo(f"nanlint: error: {message}", err=True)
        return False
    return True


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Print the documentation of a rule (by code or name)."""
    docs = _catalog()
    wanted = code.strip()
    for doc in docs.values():
        if doc.code == wanted.upper() or doc.name == wanted:
            click.echo(doc.render(), nl=False)
            return
    fail(f"unknown rule `{code}` (see `nanlint rules`)")


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_command(output_format: str) -> None:
    """List every rule: code, name, default severity, summary."""
    docs = _catalog()
    if output_format == "json":
        import json

        data = [
            {"code": d.code, "name": d.name, "family": d.family, "severity": d.severity, "default": d.default,
             "fix": d.fix, "summary": d.summary}
            for d in docs.values()
        ]
        click.echo(json.dumps(data, indent=2))
        return
    for doc in docs.values():
        state = "" if doc.default == "on" else f" [{doc.default}]"
        click.echo(f"{doc.code}  {doc.name:<34} {doc.severity:<8} {doc.summary}{state}")


def _catalog():
    try:
        return load_catalog()
    except CatalogError as exc:
        fail(str(exc))


@main.command("show-settings", short_help="Print the configuration in effect for a file or folder.")
@click.argument("path", required=False)
@click.option("--config", "config_file", type=str, help="Configuration file (pyproject.toml or nanlint.toml).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json prints only the JSON document, for tools.")
def show_settings(path, config_file, isolated, output_format) -> None:
    """Print the configuration in effect for PATH (default: the current folder) and the file it came from."""
    import json

    configs = _configs(config_file, isolated, {})
    try:
        config = configs.for_path(path or ".")
    except (ConfigError, CatalogError) as exc:
        fail(str(exc))
    if output_format == "text":
        click.echo(f"# settings from {config.source or 'defaults (no configuration file found)'}")
    click.echo(json.dumps(config.describe(), indent=2))


def _register_trace() -> None:
    from nanlint.trace.command import replay, trace

    trace.short_help = "Run a training script for one step (or --until-nan) and report where inf/NaN is born."
    main.add_command(trace)
    replay.short_help = "Re-run a saved failing step (trace --save-failing-step) under the full monitor."
    main.add_command(replay)


_register_trace()


def _register_server() -> None:
    from nanlint.server import server  # pygls is imported only when the server starts

    server.short_help = "Run the language server (LSP over stdio) for editors."
    main.add_command(server)


_register_server()
