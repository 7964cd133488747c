"""The report page opens in a real browser (headless Chromium) with the verdict first and every figure."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from confselect.comparisons import seed_statistics
from confselect.report import plot_learning_curve, plot_stability
from confselect.report_page import render_page
from confselect.verdict import write_verdict
from test_verdict import SETTINGS, synthetic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Replaces the page's closing tag in a copy: after load, the title says how many images failed to decode.
PROBE = ("<script>window.addEventListener('load', () => { const bad = [...document.images].filter("
         "i => !i.complete || i.naturalWidth === 0).length; document.title = 'images:' + document.images.length "
         "+ ' broken:' + bad; });</script></body></html>")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    summary = synthetic({"random": 1.0, "rnd": 4.0}, range(4), np.random.default_rng(0))
    paths = write_verdict(summary, out, SETTINGS)
    plot_learning_curve(summary, out / "learning_curve.png")
    plot_stability(seed_statistics(summary), out / "stability.png")
    figures = [("Learning curves", out / "learning_curve.png", "caption one"),
               ("Stability", out / "stability.png", "caption two")]
    (out / "diffusion.csv").write_text("\n")  # what a run where no model ran NVT through writes
    tables = [("Labels to target", paths["verdict_csv"]), ("Paired comparisons", paths["comparisons"]),
              ("Self-diffusion", out / "diffusion.csv")]
    html = render_page(paths["verdict_md"].read_text(), figures, tables)
    (out / "index.html").write_text(html)
    return out, html


def test_the_page_opens_with_the_verdict_and_is_self_contained(page):
    out, html = page
    body = html[html.index("<body>"):]
    assert body.index("id='verdict'") < body.index("<img")
    assert "<h1>Verdict</h1>" in body and "needs" in body and "<table>" in body
    # offline: nothing is fetched from anywhere
    assert not re.search(r"(src|href)=['\"](?!data:|#)", html)
    assert html.count("data:image/png;base64,") == 2
    assert "(no rows in this run)" in html


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (make test installs Debian's chromium)")
def test_chromium_renders_the_page_with_every_figure_decoded(page, tmp_path):
    out, html = page
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body></html>", PROBE))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<title>images:2 broken:0</title>" in dom, dom[:300]
    assert "Verdict" in dom and "rnd at" in dom
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,1600", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
