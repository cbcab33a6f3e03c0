"""``python -m labkit export-html``: an exported notebook typesets its math with no network.

Notebook 05 (the most formulas) is exported with the course's command and opened from the disk
(file://) in headless Chromium (the ``browser`` fixture of tests/conftest.py) with every request
that is not a local file blocked and recorded, as on a laptop without internet: MathJax must
start from the bundled copy, typeset every formula it finds (mjx-container, no MathJax error
node, no raw TeX left in the text), and no request may leave the machine. The same notebook
exported by plain ``jupyter nbconvert --to html`` is opened the same way to show what the test
catches: its MathJax comes from a CDN, so offline its formulas stay raw TeX.

Needs Chromium and Playwright, like tests/test_site.py. Deselect with `pytest -m "not browser"`.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.core.paths import NOTEBOOKS, ROOT
from labkit.course.export_html import MATHJAX, export

pytestmark = pytest.mark.browser

NOTEBOOK = NOTEBOOKS / "05_quantization_math.ipynb"
LOAD_MS = 60_000
# TeX that MathJax should have replaced (as in tests/test_site.py): delimiters, environments,
# an inline $...$ holding a macro.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\n]{0,80}?\\[A-Za-z]+[^$\n]*?\$")

MATH_JS = """async () => {
  for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise))
    return {mathjax: false, found: 0, typeset: 0, errors: 0};
  await MathJax.startup.promise;
  return {
    mathjax: true,
    found: [...MathJax.startup.document.math].length,
    typeset: document.querySelectorAll('mjx-container').length,
    errors: document.querySelectorAll('mjx-merror').length,
  };
}"""
# The text a reader sees outside code and typeset math.
TEXT_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container').forEach(n => n.remove());
  return body.textContent;
}"""


@contextlib.contextmanager
def offline_page(browser: Any, page_path: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """Open a file:// page; requests other than local files are aborted and listed."""
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    problems: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        page.goto(page_path.as_uri(), wait_until="load", timeout=LOAD_MS)
        yield page, problems, outside
    finally:
        context.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    res = subprocess.run(
        [sys.executable, "-m", "labkit.course.export_html", str(out), NOTEBOOK.name[:2]],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    print(res.stdout.strip())
    return out / f"{NOTEBOOK.stem}.html"


def test_exported_notebook_typesets_math_offline(browser: Any, exported: Path) -> None:
    html = exported.read_text(encoding="utf-8")
    assert f'src="{MATHJAX}"' in html and (exported.parent / MATHJAX).is_file()
    assert not re.search(r"<script[^>]+src=\"(https?:)?//", html), "a script from another host"
    with offline_page(browser, exported) as (page, problems, outside):
        math = page.evaluate(MATH_JS)
        text = page.evaluate(TEXT_JS)
        page.wait_for_timeout(300)  # late font requests and console errors
        assert math["mathjax"], "MathJax did not start from the bundled copy"
        assert math["found"] > 10, f"notebook 05 has formulas; MathJax found {math['found']}"
        assert math["typeset"] == math["found"] and not math["errors"], math
        assert not outside, f"requests left the machine: {outside[:5]}"
        assert not problems, problems[:10]
        raw = [m.group(0) for m in RAW_TEX.finditer(text)][:5]
        assert not raw, f"raw TeX left in the page: {raw}"
    print(f"{exported.name}: {math['typeset']} formulas typeset offline")


def test_plain_nbconvert_export_needs_a_network(browser: Any, tmp_path: Path) -> None:
    """What the course's export fixes, seen by the same checks: nbconvert's own page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_filename(str(NOTEBOOK))
    page_path = tmp_path / "plain.html"
    page_path.write_text(body, encoding="utf-8")
    with offline_page(browser, page_path) as (page, _problems, outside):
        math = page.evaluate(MATH_JS.replace("300", "20"))  # 2 s: it cannot come
        assert not math["mathjax"] and not page.query_selector("mjx-container")
        assert any("mathjax" in u.lower() for u in outside), outside


def test_export_rejects_an_empty_selection(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no notebooks"):
        export(tmp_path, [])
