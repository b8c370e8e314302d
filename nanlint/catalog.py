"""The rule catalog: one TOML file per rule under ``rules/``, the single source for docs, ``nanlint rule``
and the example tests. Installed wheels carry it as ``nanlint/_catalog``; a checkout reads ``rules/``."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from nanlint._toml import tomllib

DEFAULTS = ("on", "off", "preview")
SEVERITIES = ("error", "warning", "info")
FIXES = ("safe", "unsafe", "none")
REQUIRED = ("code", "name", "family", "severity", "default", "summary", "what_it_does", "why_is_this_bad")


class CatalogError(Exception):
    pass


@dataclass(frozen=True)
class Example:
    code: str
    fixed: str | None = None  # for bad examples with a fix: the source after ``--fix``
    strict: bool = False  # a bad example only degenerate inputs reach: reported with ``strict = true`` only


@dataclass(frozen=True)
class RuleDoc:
    code: str
    name: str
    family: str
    severity: str
    default: str
    summary: str
    what_it_does: str
    why_is_this_bad: str
    fix: str = "none"
    fix_safety: str = ""
    options: str = ""
    references: tuple[str, ...] = ()
    bad: tuple[Example, ...] = ()
    good: tuple[Example, ...] = ()
    path: str = ""
    option_defaults: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_preview(self) -> bool:
        return self.default == "preview"

    def render(self) -> str:
        """The rule's documentation in ruff's fixed shape, as Markdown."""
        out = [f"# {self.name} ({self.code})", "", f"Family: {self.family}. Default severity: {self.severity}."]
        if self.default != "on":
            out.append("Off by default: enable with `--select %s`%s." % (self.code, " and `--preview`" if self.is_preview else ""))
        out.append("Fix: %s." % {"safe": "a safe fix is available (`--fix`)", "unsafe": "an unsafe fix is available (`--unsafe-fixes`)", "none": "no automatic fix"}[self.fix])
        out += ["", "## What it does", self.what_it_does.strip(), "", "## Why is this bad?", self.why_is_this_bad.strip()]
        if self.bad:
            out += ["", "## Example", "```python", self.bad[0].code.strip("\n"), "```"]
        degenerate = [ex for ex in self.bad if ex.strict]
        if degenerate:
            out += ["", "Reported only with `--strict` (`strict = true`): a hazard that only a degenerate input or a "
                    "diverged run reaches, such as", "```python", degenerate[0].code.strip("\n"), "```"]
        if self.good:
            out += ["", "## Use instead", "```python", self.good[0].code.strip("\n"), "```"]
        if self.fix_safety.strip():
            out += ["", "## Fix safety", self.fix_safety.strip()]
        if self.options.strip():
            out += ["", "## Options", self.options.strip()]
        if self.references:
            out += ["", "## References"] + [f"- {ref}" for ref in self.references]
        return "\n".join(out) + "\n"


def catalog_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_catalog", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise CatalogError(f"rule catalog not found next to {here}")


def _examples(raw: list, path: Path) -> tuple[Example, ...]:
    out = []
    for item in raw:
        if not isinstance(item, dict) or "code" not in item:
            raise CatalogError(f"{path}: every example needs a `code` string")
        out.append(Example(code=item["code"], fixed=item.get("fixed"), strict=bool(item.get("strict", False))))
    return tuple(out)


def parse_rule_file(path: Path) -> RuleDoc:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from exc
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise CatalogError(f"{path}: missing {', '.join(missing)}")
    if data["default"] not in DEFAULTS or data["severity"] not in SEVERITIES or data.get("fix", "none") not in FIXES:
        raise CatalogError(f"{path}: bad default, severity or fix value")
    if not path.stem.startswith(data["code"] + "-"):
        raise CatalogError(f"{path}: file name must start with its code {data['code']}-")
    examples = data.get("examples", {})
    return RuleDoc(
        code=data["code"],
        name=data["name"],
        family=data["family"],
        severity=data["severity"],
        default=data["default"],
        summary=data["summary"],
        what_it_does=data["what_it_does"],
        why_is_this_bad=data["why_is_this_bad"],
        fix=data.get("fix", "none"),
        fix_safety=data.get("fix_safety", ""),
        options=data.get("options", ""),
        references=tuple(data.get("references", ())),
        bad=_examples(examples.get("bad", []), path),
        good=_examples(examples.get("good", []), path),
        path=str(path),
        option_defaults=dict(data.get("option_defaults", {})),
    )


@functools.lru_cache(maxsize=None)
def load_catalog() -> dict[str, RuleDoc]:
    """All rule docs by code, sorted by code."""
    docs = {}
    for path in sorted(catalog_dir().glob("NAN*.toml")):
        doc = parse_rule_file(path)
        if doc.code in docs:
            raise CatalogError(f"duplicate rule code {doc.code} in {path}")
        docs[doc.code] = doc
    return dict(sorted(docs.items()))
