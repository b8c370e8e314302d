"""`nanlint trace` as users run it: a subprocess, exit codes, the JSON report, one-line errors, and
`nanlint check` never importing torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from nanlint.trace.report import JSON_SCHEMA

from tests.trace_fixtures.helpers import EXAMPLES, FIXTURES, ROOT, line_of

pytest.importorskip("torch")


def nanlint(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nanlint", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_json_report_of_a_failing_script(tmp_path):
    out = tmp_path / "report.json"
    done = nanlint("trace", "--output-format", "json", "--output-file", str(out), "--device", "cpu",
                   str(EXAMPLES / "log_softmax_underflow.py"))
    assert done.returncode == 1, done.stderr
    data = json.loads(out.read_text())
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["schema"] == "nanlint-trace/1" and data["exit_code"] == 1 and data["device"] == "cpu"
    line = line_of(EXAMPLES / "log_softmax_underflow.py", "torch.log(probs)")
    (site,) = data["sites"]
    assert (site["code"], site["line"], site["verdict"]) == ("NAN101", line, "CONFIRMED")
    first = data["first_nonfinite"]
    assert (first["op"], first["line"], first["value"], first["is_bug"]) == ("log", line, "-inf", True)
    assert data["run"]["stop_reason"] == "1 optimizer step"
    assert data["health"]["grad_norms"]["model (Linear)"] == "nan"  # the user's name; non-finite floats stay valid JSON


def test_full_report_of_a_clean_script_and_script_arguments():
    done = nanlint("trace", str(FIXTURES / "cli_args.py"), "--", "--lr", "0.25")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lr 0.25" in done.stdout and "Result: no non-finite value was produced (exit 0)" in done.stdout


def test_dash_m_module(tmp_path):
    done = nanlint("trace", "-m", "pkg.train", cwd=FIXTURES)
    assert done.returncode == 1
    assert "pkg/model.py:11" in done.stdout and "CONFIRMED" in done.stdout


def test_errors_are_one_line_and_exit_2(tmp_path):
    missing = nanlint("trace", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    bad_device = nanlint("trace", "--device", "tpu", str(EXAMPLES / "clean_training.py"))
    assert bad_device.returncode == 2 and "--device" in bad_device.stderr and "Traceback" not in bad_device.stderr
    syntax = tmp_path / "broken.py"
    syntax.write_text("def f(:\n")
    broken = nanlint("trace", str(syntax))
    assert broken.returncode == 2 and "SyntaxError" in broken.stdout and "nanlint/trace" not in broken.stdout


def test_check_never_imports_torch():
    code = "import sys, nanlint.cli; from nanlint.trace import command; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_json_reports_of_every_example_match_the_schema():
    from nanlint.trace.report import to_dict
    from tests.trace_fixtures.helpers import trace

    for script in sorted(EXAMPLES.glob("*.py")):
        data = json.loads(json.dumps(to_dict(trace(script))))
        jsonschema.validate(data, JSON_SCHEMA)
    with_files = to_dict(trace(FIXTURES / "gradscaler_train.py"))
    jsonschema.validate(json.loads(json.dumps(with_files)), JSON_SCHEMA)


def test_an_output_file_in_a_missing_folder_is_refused_before_the_run(tmp_path):
    done = nanlint("trace", "--output-file", str(tmp_path / "nope" / "r.json"), str(FIXTURES / "crash_before_step.py"))
    assert done.returncode == 2 and "its folder does not exist" in done.stderr and done.stdout == ""
