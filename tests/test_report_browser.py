"""The HTML report in a real browser: headless Chromium loads it without errors and displays
every image.

A copy of the report gets a small script that records load errors (a broken image fires an
``error`` event) and, once the page has loaded, writes the number of images, those not displayed
(``naturalWidth`` 0 or not complete) and the errors into the DOM; Chromium's ``--dump-dom``
prints the DOM after scripts ran. The report itself has no scripts. A screenshot of the top of
the page is saved to ``results/browser-check/report.png`` (or ``$HCCSIM_ARTIFACTS``).

Under ``CI`` (set by ``.ci/run``, which installs Debian's chromium) a missing browser fails the
test; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hccsim.analysis.pipeline import analyse
from hccsim.simulator.records import concat
from hccsim.simulator.scenario import load
from hccsim.simulator.studies.run import simulate_replicates

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")

_CHECK = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? 'failed to load ' + t.tagName : String(e.message));
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var r = {images: imgs.length, broken: bad.map(function (i) { return i.alt; }),
           widths: imgs.map(function (i) { return i.naturalWidth; }),
           tables: document.querySelectorAll('table').length, errors: window.__errors};
  var pre = document.createElement('pre');
  pre.id = 'hccsim-check';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>"""


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def browser() -> str:
    path = _browser()
    if path is None:
        if _in_ci():
            pytest.fail(
                "no Chromium on this machine, but CI is set: .ci/run must install Debian's "
                "chromium (apt-get install chromium)"
            )
        pytest.skip("no Chromium installed (apt-get install chromium); CI requires it")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a small simulated study: the anchor scenario, 3 replicates of 37."""
    sc = load(ROOT / "scenarios" / "anchor_ramucirumab.yaml")
    tables = concat([t for _, t in simulate_replicates(sc, 20230101, [0, 1, 2])])
    out = tmp_path_factory.mktemp("report")
    result = analyse(
        tables,
        out,
        scan_interval_days=sc.imaging_interval_days,
        title="anchor-ramucirumab (browser check)",
        subtitle="3 replicates of 37 simulated patients",
        provenance={"scenario": sc.name, "seed": "20230101"},
    )
    assert result.report is not None and result.figures, result.notes
    return result.report


def test_the_report_is_self_contained(report):
    text = report.read_text()
    assert "<script" not in text
    # Nothing fetched: every src and href is a data URI or an in-page anchor.
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith(("data:", "#")), ref


def test_chromium_loads_the_report_and_displays_every_image(browser, report, tmp_path):
    page = tmp_path / "checked.html"
    page.write_text(report.read_text().replace("</head>", _CHECK + "</head>", 1))
    dom = subprocess.run(
        [browser, *FLAGS, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="hccsim-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the check script did not run: " + dom.stdout[-500:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    assert result["broken"] == []
    expected = report.read_text().count("<img ")
    assert result["images"] == expected >= 5
    assert all(w > 0 for w in result["widths"])
    assert result["tables"] >= 8

    shots = Path(os.environ.get("HCCSIM_ARTIFACTS", ROOT / "results" / "browser-check"))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "report.png"
    shot.unlink(missing_ok=True)
    run = subprocess.run(
        [browser, *FLAGS, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
