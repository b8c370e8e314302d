"""Reporters: SARIF against the official schema, GitHub annotations, the full format's source excerpt."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from nanlint.catalog import load_catalog
from nanlint.cli import main
from nanlint.findings import Applicability, Edit, Finding, Fix, Severity, Span
from nanlint.report import concise, full, github, sarif

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


def finding(filename="m.py", line=3, column=5, end_line=3, end_column=9, code="NAN101", severity=Severity.ERROR, fix=None, message="msg", hint=None):
    return Finding(code, "log-of-probability", message, filename, Span(line, column, end_line, end_column), severity, fix=fix, hint=hint)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sarif_from_the_cli_is_valid_sarif_2_1_0_with_rules_and_relative_uris(here):
    (here / "pkg").mkdir()
    (here / "pkg" / "my model.py").write_text(RISKY)
    (here / "broken.py").write_text("def f(:\n")
    result = CliRunner().invoke(main, ["check", "--select", "NAN101", "--output-format", "sarif", "."], catch_exceptions=False)
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "nanlint"
    assert [rule["id"] for rule in driver["rules"]] == list(load_catalog())
    rule = driver["rules"][driver["rules"].index(next(r for r in driver["rules"] if r["id"] == "NAN101"))]
    assert rule["name"] == "log-of-probability"
    assert rule["shortDescription"]["text"] == load_catalog()["NAN101"].summary
    assert rule["help"]["markdown"].startswith("# log-of-probability (NAN101)")
    assert rule["defaultConfiguration"]["level"] == "error"
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["NAN000", "NAN101"]
    for r in results:  # what GitHub code scanning needs of each result
        assert r["message"]["text"]
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning", "note")
    location = results[1]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "pkg/my%20model.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 36}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == here.as_uri() + "/"
    replacement = results[1]["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["insertedContent"]["text"] == "F.log_softmax(x, dim=-1)"


def test_sarif_with_no_findings_and_with_every_severity_is_valid(here):
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(sarif.render([], {})))
    fix = Fix("unsafe thing", (Edit(Span(1, 1, 1, 2), "x"),), Applicability.UNSAFE)
    findings = [
        finding(severity=Severity.ERROR, hint="a hint"),
        finding(severity=Severity.WARNING, fix=fix),
        finding(code="NAN002", severity=Severity.INFO, filename="/elsewhere/outside.py"),
    ]
    log = json.loads(sarif.render(findings, {}))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "warning", "note"]
    assert results[0]["message"]["text"] == "msg (help: a hint)"
    assert results[2]["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "file:///elsewhere/outside.py"}


def test_schema_validation_rejects_a_broken_log():
    # the vendored schema is real: it refuses what GitHub would refuse
    broken = json.loads(sarif.render([finding()], {}))
    del broken["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(broken)


def test_github_annotations_escape_data_and_properties():
    text = github.render([
        finding(filename="a,b:c.py", message="50% of\nlines"),
        finding(severity=Severity.WARNING),
        finding(severity=Severity.INFO),
    ], {})
    lines = text.splitlines()
    assert lines[0] == "::error file=a%2Cb%3Ac.py,line=3,col=5,endLine=3,endColumn=9,title=nanlint (NAN101)::a,b:c.py:3:5: NAN101 50%25 of%0Alines"
    assert lines[1].startswith("::warning file=m.py,line=3,col=5,")
    assert lines[2].startswith("::notice file=m.py,")


def test_full_format_caret_under_the_span_with_tabs_and_multi_line_spans():
    source = "a = 1\n\tx = torch.log(p)\ny = f(\n    1)\n"
    out = full.render([finding(line=2, column=6, end_column=18), finding(line=3, column=5, end_line=4, end_column=7)], {"m.py": source})
    blocks = out.split("\n\n")
    first = blocks[0].splitlines()
    assert first[2] == "2 |  x = torch.log(p)"
    assert first[3] == "  |      ^^^^^^^^^^^^"
    second = blocks[1].splitlines()
    assert second[2] == "3 | y = f("
    assert second[3] == "  |     ^^"  # to the end of the first line


def test_full_format_without_source_or_outside_it_prints_no_excerpt():
    out = full.render([finding(filename="gone.py"), finding(line=99)], {"m.py": "x = 1\n"})
    assert "|" not in out
    assert out.count("NAN101") == 2


def test_full_and_concise_mark_only_safe_fixes_fixable():
    safe = Fix("do it", (Edit(Span(3, 5, 3, 9), "y"),))
    unsafe = Fix("maybe", (Edit(Span(3, 5, 3, 9), "y"),), Applicability.UNSAFE)
    text = concise.render([finding(fix=safe), finding(fix=unsafe)], {})
    assert text.splitlines() == ["m.py:3:5: NAN101 [*] msg", "m.py:3:5: NAN101 msg"]
    assert "  = fix (unsafe, with --unsafe-fixes): maybe" in full.render([finding(fix=unsafe)], {})
