"""The policy brief as a person sees it: PDF pages as images, the HTML in a real browser.

Needs Debian's ``chromium`` and ``poppler-utils`` (``pdftoppm``, ``pdftotext``,
``pdfimages``); ``.ci/run`` installs them. Without them these tests skip and say so.
One pack is rendered per session (:func:`rendered`), shared by every check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "analyses" / "peru_tap"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
POPPLER = all(shutil.which(t) for t in ("pdftoppm", "pdftotext", "pdfimages"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm) not installed: PDF pages not "
                                                       "checked as images (.ci/run installs it)")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: the HTML brief is not checked "
                                                             "in a browser (.ci/run installs it)")


@pytest.fixture(scope="session")
def rendered(peru_results, tmp_path_factory):
    """The Peru TAP pack with its briefs (es, en), HTML and PDF, rendered once."""
    from impactkit.pack.cli import brief_settings
    from impactkit.pack.pipeline import pack

    out = tmp_path_factory.mktemp("visual") / "peru_tap"
    paths = pack(peru_results, out, to="html,pdf", date="2026-12-01", brief=brief_settings(PERU))
    return out, paths


def page_text(pdf: Path, page: int) -> str:
    done = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True,
                          text=True, check=True)
    return " ".join(done.stdout.split())


@needs_poppler
@pytest.mark.parametrize("lang, message_start", [("es", "Formar Proveedores comunitarios"),
                                                  ("en", "Training community Technical Assistance")])
def test_brief_pdf_is_two_pages_with_message_and_chart_on_page_one(rendered, lang, message_start, tmp_path):
    out, _ = rendered
    pdf = out / f"policy-brief-{lang}.pdf"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2, f"{pdf.name}: {len(pages)} pages, expected 2"
    first = page_text(pdf, 1)
    assert message_start in first
    assert first.index(message_start) < 400  # the message opens the page, right after the title
    images = subprocess.run(["pdfimages", "-list", "-f", "1", "-l", "1", str(pdf)], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[2:]
    assert images, "no chart on page 1"
    heading = {"es": "Recomendación.", "en": "Recommendation."}[lang]
    assert heading in first  # the recommendation closes page 1
    assert pages[0].stat().st_size > 5000  # a page with content, not a blank render


def probe_page(html: Path, folder: Path) -> Path:
    """A copy of ``html`` that reports where its message ends (postMessage to the wrapper)."""
    text = html.read_text(encoding="utf-8")
    script = ("<script>window.addEventListener('load', () => {"
              "const m = document.querySelector('.message').getBoundingClientRect();"
              "parent.postMessage(JSON.stringify({bottom: m.bottom, top: m.top, width: window.innerWidth,"
              " height: window.innerHeight}), '*');});</script>")
    probe = folder / "probe.html"
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    return probe


def measure(html: Path, width: int, height: int, folder: Path) -> dict:
    """Load ``html`` in a ``width`` x ``height`` viewport (an iframe: headless windows have a
    minimum width) and return the message's box."""
    probe = probe_page(html, folder)
    wrapper = folder / f"wrap-{width}.html"
    wrapper.write_text(
        "<!doctype html><html><head><title>pending</title></head><body style='margin:0'>"
        f"<iframe src='{probe.name}' style='border:0;width:{width}px;height:{height}px'></iframe>"
        "<script>window.addEventListener('message', e => { document.title = e.data; });</script></body></html>",
        encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000",
                               "--virtual-time-budget=5000", "--dump-dom", wrapper.as_uri()],
                              capture_output=True, text=True, timeout=120, check=False)
    start, end = done.stdout.find("<title>"), done.stdout.find("</title>")
    assert start >= 0 and end > start, f"chromium gave no DOM: {done.stderr.strip()[-300:]}"
    return json.loads(done.stdout[start + 7:end].replace("&quot;", '"'))


@needs_chromium
@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_brief_html_answer_above_the_fold(rendered, width, height, tmp_path):
    out, _ = rendered
    html = out / "policy-brief-es.html"
    shutil.copytree(out / "figures", tmp_path / "figures")
    box = measure(html, width, height, tmp_path)
    assert box["width"] == width
    assert 0 <= box["top"] < box["bottom"] <= height, f"the message ends at {box['bottom']:.0f}px of {height}px"
