"""The course website (``python -m labkit site``), built once and read in real Chromium.

The session fixture builds the site into a temporary folder with ``--strict`` (a Sphinx warning,
e.g. a link to a missing heading, fails the build) and serves it with http.server on
127.0.0.1. Every page is then opened in headless Chromium (Playwright) with every request to
another host blocked and recorded, as a classroom without internet would see it:
- no console error, no page error, no failed request, no request leaving 127.0.0.1;
- every image loaded (naturalWidth > 0), every figure drawn;
- every math node typeset by the bundled MathJax, and no raw TeX (``$$``, ``\\(``) left in text;
- every link within the site points to a file of the site, and its #anchor to an element there;
- chapter pages carry the Binder and Colab buttons (the README's badge URLs) and a working
  download link of the saved notebook;
the teacher's guide (docs/teachers_guide.md) is the last page, with all its tables and links;
and the site's search page finds "zero-point" in the quantization chapter. A figure saved
without its PNG (none today) is drawn by the bundled plotly.js (checked without a browser).

Needs Chromium at /usr/bin/chromium (or $LABKIT_CHROMIUM) and the `playwright` package: the
``browser`` fixture of tests/conftest.py, shared with tests/test_browser.py. Deselect with
`pytest -m "not browser"`.
"""

from __future__ import annotations

import contextlib
import functools
import html.parser
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from labkit.core.paths import ROOT, notebook_paths
from labkit.course.site import GUIDE, launch_urls, site_figures

pytestmark = pytest.mark.browser

BUILD_S = 600  # the build takes about 20 s on the 2-core course machine
LOAD_MS = 60_000
STEMS = [p.stem for p in notebook_paths()]
PAGES = ["index", *STEMS, "interview_bank", "glossary", "teachers_guide", "search", "genindex"]
PLOTLY = "application/vnd.plotly.v1+json"
# TeX that MathJax should have replaced: display/inline delimiters, environments, and an
# inline $...$ holding a macro ("$5" alone is a price, not math).
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\n]{0,80}?\\[A-Za-z]+[^$\n]*?\$")


# ---------------------------------------------------------------- build and serve


@dataclass
class Site:
    root: Path
    url: str
    build_s: float
    build_log: str
    started: float  # time.time() when the build began


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        pass


def du_sh(folder: Path) -> str:
    res = subprocess.run(["du", "-sh", str(folder)], capture_output=True, text=True)
    return res.stdout.split()[0] if res.returncode == 0 else "?"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    out = tmp_path_factory.mktemp("site") / "_site"
    started, start = time.time(), time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "labkit.course.site", "--out", str(out), "--strict"],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_S,
    )  # fmt: skip
    took = time.perf_counter() - start
    log = res.stdout + res.stderr
    assert res.returncode == 0, f"python -m labkit site --strict failed:\n{log[-6000:]}"
    print(f"\nsite built in {took:.1f} s, {du_sh(out)} ({out})")
    s = Site(out, "", took, log, started)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(out))
    )
    s.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- one page in Chromium


@dataclass
class Visit:
    page: Any
    problems: list[str]
    outside: list[str]


@contextlib.contextmanager
def open_page(browser: Any, site: Site, path: str) -> Iterator[Visit]:
    """Open site.url + path with every request to another host blocked and recorded."""
    context = browser.new_context()
    visit = Visit(context.new_page(), [], [])

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(site.url) or url.startswith(("data:", "blob:", "about:")):
            r.continue_()
        else:
            visit.outside.append(url)
            r.abort()

    context.route("**/*", route)
    page = visit.page
    page.on("console", lambda m: m.type == "error" and visit.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: visit.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: visit.problems.append(f"request failed: {r.url}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and visit.problems.append(f"HTTP {r.status}: {r.url}"),
    )
    try:
        page.goto(site.url + path, wait_until="load", timeout=LOAD_MS)
        yield visit
    finally:
        context.close()


MATH_JS = """async () => {
  const nodes = [...document.querySelectorAll('.math')];
  if (!nodes.length) return {nodes: 0, typeset: 0, mathjax: !!window.MathJax};
  for (let i = 0; i < 600 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise))
    return {nodes: nodes.length, typeset: 0, mathjax: false};
  await MathJax.startup.promise;
  const typeset = nodes.filter(n => n.querySelector('mjx-container')).length;
  const raw = nodes.filter(n => !n.querySelector('mjx-container')).slice(0, 3).map(n => n.textContent);
  return {nodes: nodes.length, typeset, raw, mathjax: true};
}"""

# The page's text outside code, scripts and typeset math (closed <details> included).
TEXT_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .math, textarea')
      .forEach(n => n.remove());
  return body.textContent;
}"""

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.onload = i.onerror = r; setTimeout(r, 30000); })));
  return imgs.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth}));
}"""

PLOTLY_JS = """() => [...document.querySelectorAll('.labkit-plotly')].map(
  d => !!d.querySelector('svg.main-svg'))"""


class _Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("id", "name") and v:
                self.ids.add(v)


@functools.cache
def element_ids(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


def broken_links(site: Site, page_path: str, hrefs: list[str]) -> list[str]:
    """Links within the site whose file does not exist or whose #anchor is not in it."""
    broken = []
    for href in hrefs:
        if not href.startswith(site.url):
            continue  # another host (launch buttons, the repository): not part of the site
        parsed = urllib.parse.urlsplit(href)
        rel = urllib.parse.unquote(parsed.path).lstrip("/")
        target = site.root / rel
        if rel == "" or target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{page_path}: {href} (no file {rel})")
            continue
        anchor = urllib.parse.unquote(parsed.fragment)
        if anchor and target.suffix == ".html" and anchor not in element_ids(target):
            broken.append(f"{page_path}: {href} (no #{anchor} in {target.name})")
    return broken


def check_page(browser: Any, site: Site, path: str) -> dict[str, Any]:
    """Open one page and return what was found wrong, with a few counts."""
    with open_page(browser, site, path) as visit:
        page = visit.page
        math = page.evaluate(MATH_JS)
        images = page.evaluate(IMAGES_JS)
        plotly = page.evaluate(PLOTLY_JS)
        text = page.evaluate(TEXT_JS)
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        page.wait_for_timeout(200)  # late console errors
        problems = list(visit.problems)
        if math["nodes"] and not math["mathjax"]:
            problems.append(f"{math['nodes']} math nodes but MathJax did not start")
        elif math["typeset"] != math["nodes"]:
            problems.append(
                f"{math['nodes'] - math['typeset']} math nodes not typeset: {math['raw']}"
            )
        problems += [f"image not loaded: {i['src']}" for i in images if not i["w"]]
        problems += [f"{plotly.count(False)} plotly figures not drawn"] if not all(plotly) else []
        problems += [f"raw TeX in text: {m.group(0)!r}" for m in RAW_TEX.finditer(text)][:5]
        problems += broken_links(site, path, hrefs)
        problems += [f"request left 127.0.0.1: {u}" for u in visit.outside]
        figures = sum(i["src"].startswith("_images/") for i in images)
        return {
            "problems": problems,
            "math": math["nodes"],
            "figures": figures,
            "plotly": len(plotly),
            "hrefs": hrefs,
        }


# ---------------------------------------------------------------- the tests


def test_site_has_one_page_per_notebook_and_nothing_else(site: Site) -> None:
    pages = {p.stem for p in site.root.glob("*.html")}
    assert pages == set(PAGES), f"missing {set(PAGES) - pages}, unexpected {pages - set(PAGES)}"
    assert {p.name for p in (site.root / "notebooks").iterdir()} == {f"{s}.ipynb" for s in STEMS}
    for stem in STEMS:  # the download is the saved notebook itself
        saved = ROOT / "notebooks" / f"{stem}.ipynb"
        if saved.stat().st_mtime < site.started:  # (not rewritten since the build began)
            download = (site.root / "notebooks" / f"{stem}.ipynb").read_bytes()
            assert download == saved.read_bytes(), (
                f"{stem}.ipynb: the download is not the saved one"
            )
    print(f"site: {len(pages)} pages, {du_sh(site.root)}, built in {site.build_s:.1f} s")


def test_home_page_is_the_readme_map_in_course_order(browser: Any, site: Site) -> None:
    with open_page(browser, site, "index.html") as visit:
        page = visit.page
        text = page.inner_text("article")
        assert "Notebook map" in text and "Learning paths" in text
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        paths = readme.split("## Learning paths", 1)[1].split("\n## ", 1)[0]
        first = re.search(r"\*\*(.+?)\*\*", paths).group(1)  # the first path's name
        assert first in text
        links = page.eval_on_selector_all(
            "article table a[href]", "as => as.map(a => a.getAttribute('href'))"
        )
        assert [h.removesuffix(".html") for h in links] == STEMS
        article = page.eval_on_selector_all(
            "article a[href]", "as => as.map(a => a.getAttribute('href'))"
        )
        assert {"interview_bank.html", "glossary.html", "teachers_guide.html"} <= set(article)
        # The sidebar lists the pages in the map's order, the interview pages, the guide.
        nav = page.eval_on_selector_all(
            "nav.bd-links a.reference.internal", "as => as.map(a => a.getAttribute('href'))"
        )
        order = [h.removesuffix(".html") for h in nav if "#" not in h]
        assert order == [*STEMS, "interview_bank", "glossary", "teachers_guide"], order


def saved_figures(stem: str) -> tuple[int, int]:
    """(PNG outputs, plotly outputs saved without a PNG) of notebooks/<stem>.ipynb."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    outs = [o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", [])]
    png = sum("image/png" in d for d in outs)
    return png, sum(PLOTLY in d and "image/png" not in d for d in outs)


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline(browser: Any, site: Site, name: str) -> None:
    found = check_page(browser, site, f"{name}.html")
    assert not found["problems"], f"{name}.html:\n" + "\n".join(found["problems"][:40])
    if name.startswith(("05", "06", "08")):
        assert found["math"] > 10, "chapters with formulas should show them typeset"
    if name in STEMS:  # every saved figure is on the page: its PNG, else drawn by plotly.js
        if (ROOT / "notebooks" / f"{name}.ipynb").stat().st_mtime < site.started:
            assert (found["figures"], found["plotly"]) == saved_figures(name)
        urls = launch_urls(f"{name}.ipynb")
        assert urls["binder"] in found["hrefs"] and urls["colab"] in found["hrefs"]
        assert site.url + f"notebooks/{name}.ipynb" in found["hrefs"]


def test_figures_keep_their_png_and_plotly_js_draws_the_others() -> None:
    """The site shows a figure's saved PNG (titled for screen readers); a figure saved without
    one is drawn by the site's own plotly.js (today's notebooks all have PNGs)."""
    spec = {"data": [{"type": "bar", "y": [1, 2]}], "layout": {"title": {"text": "A <b>t</b>"}}}
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {PLOTLY: spec, "image/png": "iVBOR"}),
        nbformat.v4.new_output("display_data", {PLOTLY: spec}),
        nbformat.v4.new_output("display_data", {PLOTLY: spec}),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    assert site_figures(nb) == 2
    kept, drawn, again = (o["data"] for o in cell.outputs)
    assert set(kept) == {"image/png"} and cell.metadata["mystnb"]["image"]["alt"] == "A t"
    assert drawn["text/html"].startswith('<script src="_static/plotly.min.js">')
    assert "Plotly.newPlot" in again["text/html"] and "plotly.min.js" not in again["text/html"]
    assert "widgets" not in nb.metadata  # saved widget state would load a CDN


def markdown_tables(text: str) -> list[int]:
    """Rows (header included, separator not) of each markdown table in ``text``."""
    tables, run = [], 0
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            run += 1
        elif run:
            tables.append(run - 1)
            run = 0
    return tables


def test_teachers_guide_is_a_page_with_its_tables_and_links(browser: Any, site: Site) -> None:
    """docs/teachers_guide.md (from `python -m labkit classroom guide`) is the last page: every
    table of the guide is an HTML table with all its rows, each notebook's path links to its
    chapter page and each notebook of the time table to its section of the guide."""
    tables = markdown_tables(GUIDE.read_text(encoding="utf-8"))
    assert len(tables) >= 2, f"the guide should have its time table and the plans: {tables}"
    found = check_page(browser, site, "teachers_guide.html")
    assert not found["problems"], "\n".join(found["problems"][:40])
    with open_page(browser, site, "teachers_guide.html") as visit:
        page = visit.page
        rows = page.eval_on_selector_all("article table", "ts => ts.map(t => t.rows.length)")
        assert rows == tables, f"HTML tables' rows {rows}, the guide's markdown tables {tables}"
        text = page.inner_text("article")
        for heading in ("Time per notebook", "Notebook by notebook", "Plans"):
            assert heading in text, f"no '{heading}' on the page"
        article = page.eval_on_selector_all(
            "article a[href]", "as => as.map(a => a.getAttribute('href'))"
        )
        missing = {f"{s}.html" for s in STEMS} - set(article)
        assert not missing, f"notebooks not linked from the guide: {sorted(missing)}"
        in_table = page.eval_on_selector(  # the time table: one row per notebook
            "article table",
            "t => [...t.querySelectorAll('tbody tr td:first-child a')]"
            ".map(a => a.getAttribute('href'))",
        )
        assert len(in_table) == len(STEMS) and all(h.startswith("#") for h in in_table), in_table
    print(f"teachers_guide.html: {len(rows)} tables, {len(article)} links, all resolve")


def test_search_finds_zero_point(browser: Any, site: Site) -> None:
    with open_page(browser, site, "search.html") as visit:
        page = visit.page
        box = page.locator(".bd-search-container form.bd-search input[name=q]")
        box.fill("zero-point")
        box.press("Enter")
        page.wait_for_url(re.compile(r"search\.html\?q=zero-point"), timeout=LOAD_MS)
        results = page.locator("#search-results ul.search li a")
        results.first.wait_for(timeout=LOAD_MS)
        page.wait_for_function(
            "() => /Search finished|found \\d+ page/.test("
            "document.querySelector('#search-results')?.textContent || '')",
            timeout=LOAD_MS,
        )
        hrefs = results.evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert any(h.startswith("05_quantization_math.html") for h in hrefs), hrefs
        page.wait_for_timeout(200)
        assert not visit.problems and not visit.outside, visit.problems + visit.outside
