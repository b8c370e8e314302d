"""The command line: ``nanlint check``, ``rule``, ``rules``, ``show-settings`` and ``trace``.

Exit codes follow ruff: 0 clean, 1 findings, 2 usage, configuration or internal error.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from nanlint import __version__
from nanlint.catalog import CatalogError, load_catalog
from nanlint.config import Config, ConfigError, load
from nanlint.findings import Finding


def fail(message: str) -> "NoReturn":  # noqa: F821
    click.echo(f"nanlint: error: {message}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nanlint")
def main() -> None:
    """Find where PyTorch model and training code will produce inf/NaN."""


def _load_config(config_file: str | None, isolated: bool, overrides: dict) -> Config:
    from dataclasses import replace

    from nanlint import selection

    try:
        config = load(config_file, isolated)
    except ConfigError as exc:
        fail(str(exc))
    docs = load_catalog()
    changes = {}
    try:
        for key in ("select", "extend_select", "ignore"):
            value = overrides.get(key)
            if value:
                selectors = tuple(s for item in value for s in item.split(",") if s.strip())
                selection.validate(selectors, docs, f"--{key.replace('_', '-')}")
                changes[key] = selectors if key == "select" else tuple(getattr(config, key)) + selectors
    except selection.SelectionError as exc:
        fail(str(exc))
    if overrides.get("preview"):
        changes["preview"] = True
    if overrides.get("target_precision"):
        changes["target_precision"] = overrides["target_precision"]
    return replace(config, **changes) if changes else config


@main.command()
@click.argument("paths", nargs=-1, type=str)
@click.option("--select", multiple=True, help="Rule codes, prefixes (NAN1) or ALL to enable (replaces the default set).")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the selection.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--preview", is_flag=True, help="Enable preview rules selected by prefix or ALL.")
@click.option("--output-format", type=click.Choice(["full", "concise", "json"]), default="full", show_default=True)
@click.option("--output-file", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--fix", is_flag=True, help="Apply safe fixes.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply unsafe fixes (with --fix or --diff).")
@click.option("--diff", is_flag=True, help="Print the fixes as a diff instead of writing them.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
@click.option("--config", "config_file", type=str, help="Configuration file (pyproject.toml or nanlint.toml).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--force-exclude", is_flag=True, help="Apply excludes to paths named on the command line too.")
@click.option("--target-precision", type=click.Choice(["float32", "float16", "bfloat16"]), help="Assume this working precision.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel processes (default: one per CPU).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write .nanlint_cache/.")
def check(paths, select, extend_select, ignore, preview, output_format, output_file, fix, unsafe_fixes, diff, exit_zero, quiet, config_file, isolated, force_exclude, target_precision, jobs, no_cache):
    """Check PATHS (default: the current directory) for inf/NaN hazards."""
    from nanlint import api
    from nanlint.fixes import apply_edits, unified_diff
    from nanlint.report import FORMATS

    config = _load_config(config_file, isolated, dict(select=select, extend_select=extend_select, ignore=ignore, preview=preview, target_precision=target_precision))
    paths = list(paths) or ["."]
    result = api.run(paths, config, force_exclude, jobs=jobs, cache=False if no_cache else None)
    findings = result.findings
    sources: dict[str, str] = {}
    for name in {f.filename for f in findings}:
        try:
            sources[name] = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    fixed = 0
    if fix or diff:
        findings, fixed, diffs = _apply_fixes(findings, sources, config, unsafe_fixes, write=not diff)
        if diff:
            click.echo("".join(diffs), nl=False)
            sys.exit(1 if diffs and not exit_zero else 0)
    text = FORMATS[output_format](findings, sources, color=_use_color(output_file))
    if output_format in ("full", "concise") and not quiet:
        text += _summary(findings, fixed)
    for error in result.errors:
        click.echo(f"nanlint: error: {error.filename}: rule {error.rule} failed: {error.message}", err=True)
    if output_file:
        try:
            Path(output_file).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output_file}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False)
    if result.errors:
        sys.exit(2)
    sys.exit(1 if findings and not exit_zero else 0)


def _apply_fixes(findings, sources, config, unsafe, write):
    from nanlint import api
    from nanlint.fixes import apply_edits, unified_diff

    remaining: list[Finding] = []
    diffs: list[str] = []
    total = 0
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        by_file.setdefault(f.filename, []).append(f)
    for filename, file_findings in sorted(by_file.items()):
        original = sources.get(filename)
        if original is None or filename == "-":
            remaining.extend(file_findings)
            continue
        text, current = original, file_findings
        for _ in range(10):  # fixes can enable other fixes; stop when stable
            new_text, applied = apply_edits(text, current, unsafe)
            if not applied or new_text == text:
                break
            total += applied
            text = new_text
            current = api.check_source(text, filename, config)
        if text != original:
            if write:
                Path(filename).write_text(text, encoding="utf-8")
            else:
                diffs.append(unified_diff(filename, original, text))
        remaining.extend(current if text != original else file_findings)
    remaining.sort(key=Finding.sort_key)
    return remaining, total, diffs


def _summary(findings: list[Finding], fixed: int) -> str:
    fixed_text = f" ({fixed} fixed)" if fixed else ""
    if not findings:
        return f"All checks passed!{fixed_text}\n" if not fixed else f"Fixed {fixed} problem{'s' if fixed != 1 else ''}; all checks passed!\n"
    n = len(findings)
    fixable = sum(1 for f in findings if f.fix is not None and f.fix.applicability.value == "safe")
    line = f"Found {n} problem{'s' if n != 1 else ''}.{fixed_text}\n"
    if fixable:
        line += f"[*] {fixable} fixable with the `--fix` option.\n"
    return line


def _use_color(output_file: str | None) -> bool:
    if output_file or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


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
def rules_command() -> None:
    """List every rule: code, name, default severity, summary."""
    for doc in _catalog().values():
        state = "" if doc.default == "on" else f" [{doc.default}]"
        click.echo(f"{doc.code}  {doc.name:<34} {doc.severity:<8} {doc.summary}{state}")


def _catalog():
    try:
        return load_catalog()
    except CatalogError as exc:
        fail(str(exc))


@main.command("show-settings")
@click.option("--config", "config_file", type=str)
@click.option("--isolated", is_flag=True)
def show_settings(config_file, isolated) -> None:
    """Print the effective configuration and where it came from."""
    import json

    config = _load_config(config_file, isolated, {})
    click.echo(json.dumps(config.describe(), indent=2))


def _register_trace() -> None:
    from nanlint.trace.command import trace

    main.add_command(trace)


_register_trace()
