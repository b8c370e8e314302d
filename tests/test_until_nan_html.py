"""The health page of `--until-nan`: self-contained HTML with inline SVG curves and the first non-finite step
marked; checked for its structure, and in a real headless browser (Debian's chromium) when one is installed."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest

from tests.trace_fixtures.helpers import FIXTURES

torch = pytest.importorskip("torch")

from nanlint.trace import html  # noqa: E402
from nanlint.trace.session import TraceOptions  # noqa: E402
from nanlint.trace.until_nan import UntilNanOptions, until_nan  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    result = until_nan(UntilNanOptions(TraceOptions(script=str(FIXTURES / "late_standardize.py"))))
    path = tmp_path_factory.mktemp("health") / "health.html"
    assert html.write(str(path), result.until_nan, "late_standardize.py") is None
    return path, path.read_text(), result.until_nan


def _curves(text):
    return {m["name"]: (int(m["n"]), m["points"].split()) for m in re.finditer(
        r'<polyline class="curve" data-series="(?P<name>[^"]+)" data-points="(?P<n>\d+)"[^>]* points="(?P<points>[^"]*)"', text)}


def test_the_page_is_self_contained_and_marks_the_failing_step(page):
    _, text, info = page
    assert text.startswith("<!DOCTYPE html>") and html.MARKER in text
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert text.count('<line class="nan-step" data-step="150"') == 4  # in each panel
    assert "first non-finite step: 150 (loss)" in text


def test_each_curve_has_one_point_per_recorded_value(page):
    _, text, info = page
    curves = _curves(text)
    h = info["health"]
    assert curves["loss"][0] == len(curves["loss"][1]) == 149  # steps 1-149; 150 is the marked one
    assert curves["grad_norm"][0] == 149
    assert curves["update_ratio"][0] == len(h["update_ratio"]) == 15  # step 1 and every 10th
    assert set(curves) == {"loss", "grad_norm", "update_ratio", "Net.body", "Net.head"}
    xs = [float(p.split(",")[0]) for p in curves["loss"][1]]
    assert xs == sorted(xs) and len(set(xs)) == 149


def test_a_user_file_is_not_written_over(tmp_path, page):
    mine = tmp_path / "report.html"
    mine.write_text("<html>mine</html>")
    assert "nanlint did not write it" in html.write(str(mine), page[2], "x")
    assert mine.read_text() == "<html>mine</html>"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: apt-get install chromium)")
def test_a_headless_browser_renders_the_curves_and_the_marked_step(page, tmp_path):
    path, text, _ = page

    def shot(source, name):
        out = tmp_path / f"{name}.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={out}", "--window-size=800,1100", source.as_uri()],
                       capture_output=True, timeout=60, check=False)
        assert out.is_file(), "chromium wrote no screenshot"
        return out

    full = shot(path, "full")
    assert _png_size(full) == (800, 1100)
    assert full.stat().st_size > 30_000  # four panels of curves, not a blank page
    unmarked = tmp_path / "unmarked.html"
    unmarked.write_text(re.sub(r'<line class="nan-step"[^>]*/>\n<text[^>]*class="mark"[^>]*>[^<]*</text>', "", text))
    assert unmarked.read_text().count("nan-step") == 0
    assert shot(unmarked, "unmarked").read_bytes() != full.read_bytes()  # the marker is drawn
