"""``python -m labkit site``: the course website, built from the saved, executed notebooks.

    python -m labkit site                 # build into _site/ (ignored by git)
    python -m labkit site --out DIR       # build somewhere else
    python -m labkit site --strict        # a Sphinx warning (e.g. a broken link) fails the build
    python -m http.server --directory _site 8000   # serve it, e.g. to a classroom, offline

Sphinx + myst-nb (Executable Books, the engine of Jupyter Book 1) turn each notebook into one
page as it was saved: nothing is re-executed (``nb_execution_mode = "off"``; the outputs are
the ones nbval checks). The build and the site work offline: the theme (sphinx-book-theme), the
search index, MathJax 3 (shipped by the PyPI package sphinx-mathjax-offline) and, where needed,
plotly.js (shipped by plotly) are files in the site folder; no page loads anything from
another host (tests/test_site.py checks it in Chromium).

The Sphinx source is generated in a temporary folder (notebooks/ is never written):
- ``index.md``: the README's title, introduction, notebook map and learning paths, read at
  build time, so the home page never drifts from the README;
- ``NN_topic.ipynb``: each notebook in course order, its Colab set-up cell left out, launch
  buttons (Binder and Colab, the README's badge URLs for this notebook) and a download link
  under its title, and each plotly figure shown as the PNG the build saved beside it (drawn by
  the bundled plotly.js where no PNG was saved);
- ``interview_bank.md`` and ``glossary.md``: ``labkit.interview``'s questions and glossary;
- ``teachers_guide.md``: docs/teachers_guide.md as ``python -m labkit classroom guide`` wrote
  it, its notebook paths linked to the chapter pages (last in the navigation, "For teachers");
- ``notebooks/*.ipynb``: the saved notebooks themselves, for the download links.
The finished HTML then replaces the output folder. Links between notebooks use JupyterLab's
heading anchors (``05_quantization_math.ipynb#4.-An-activation-with-outliers``); the site gives
its headings the same anchors (``jupyter_slug``), so one link works in both.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat

from labkit.core.paths import NOTEBOOKS, ROOT, notebook_paths
from labkit.course.build_notebooks import COLAB_MARK, repo_url

SITE = ROOT / "_site"
GUIDE = ROOT / "docs" / "teachers_guide.md"  # written by `python -m labkit classroom guide`
FILES = Path(__file__).with_name("site_files")  # conf.py and the stylesheet
MARKER = ".labkit-site"  # marks a folder this command built (only such a folder is replaced)
BRANCH = "main"  # the branch the README's launch badges point at
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
HOME_SECTIONS = ("Notebook map", "Learning paths")
# MathJax 3 combined builds the site does not use (it loads tex-chtml.js): left out of _site.
MATHJAX_UNUSED = re.compile(r"^(tex-svg|tex-mml|mml-|tex-chtml-full|node-main)|^output/svg")


def jupyter_slug(title: str) -> str:
    """A heading's anchor as JupyterLab makes it: its text with spaces turned into '-'.

    Sphinx's heading anchors (``myst_heading_slug_func``), so that a notebook's links to
    headings (``labkit.interview.section_link``) work in JupyterLab and on the site alike."""
    return title.strip().replace(" ", "-")


def launch_urls(name: str, url: str | None = None) -> dict[str, str]:
    """Binder and Colab URLs of notebooks/<name>, as the README's badges write them."""
    slug = (url or repo_url()).removeprefix("https://github.com/").strip("/")
    return {
        "binder": f"https://mybinder.org/v2/gh/{slug}/{BRANCH}?urlpath=lab/tree/notebooks/{name}",
        "colab": f"https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{name}",
    }


# ---------------------------------------------------------------- the home page


def _sections(markdown: str) -> tuple[str, dict[str, str]]:
    """The text before the first "## " heading, and each "## " section by its title."""
    parts = re.split(r"^## +(.+?)\s*$", markdown, flags=re.M)
    return parts[0], {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def _site_links(markdown: str, url: str) -> str:
    """README links for the site: notebooks/X.ipynb -> the page X; a badge -> a text link;
    any other relative link -> the file on the repository's site."""
    markdown = re.sub(r"\[!\[([^\]]*)\]\([^)]*\)\]\(([^)]*)\)", r"[\1](\2)", markdown)

    def fix(m: re.Match[str]) -> str:
        target = m.group(1)
        if re.match(r"[a-z]+:|#", target):
            return m.group(0)
        if target.startswith("notebooks/") and target.split("#")[0].endswith(".ipynb"):
            return f"]({target.removeprefix('notebooks/')})"
        return f"]({url}/blob/{BRANCH}/{target})"

    return re.sub(r"\]\(([^)\s]+)\)", fix, markdown)


def home_page(
    readme: str, chapters: list[str], extra: list[str], url: str, teachers: Sequence[str] = ()
) -> str:
    """index.md: the README's title and introduction (its badges as text links), a line
    pointing to the repository and the interview pages, the README's notebook map and learning
    paths, then the site's table of contents (chapters, the extra pages, the teachers' pages)."""
    intro, sections = _sections(readme)
    missing = [s for s in HOME_SECTIONS if s not in sections]
    if missing:
        raise SystemExit(f"README.md has no '## {missing[0]}' section for the site's home page")
    badges = " · ".join(re.findall(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)", intro))
    intro = re.sub(r"^\[!\[.*\n", "", intro, flags=re.M)
    title, _, body = intro.strip().partition("\n")
    if badges:
        body = f"Run it online: {badges} (notebook 00; each chapter has its own).\n\n{body.strip()}"
    note = (
        f"Set-up, tests and troubleshooting: the [repository]({url}) and its README. Every "
        "interview question and the glossary of key terms have their own pages: the "
        "[interview bank](interview_bank.md) and the [glossary](glossary.md)."
    )
    if "teachers_guide" in teachers:
        note += " Teaching the course: the [teacher's guide](teachers_guide.md)."
    course = "\n\n".join(f"## {s}\n{sections[s].strip()}" for s in HOME_SECTIONS)
    toc = [
        "```{toctree}\n:hidden:\n:caption: Chapters\n\n" + "\n".join(chapters) + "\n```",
        "```{toctree}\n:hidden:\n:caption: Interview prep\n\n" + "\n".join(extra) + "\n```",
    ]
    if teachers:
        toc.append(
            "```{toctree}\n:hidden:\n:caption: For teachers\n\n" + "\n".join(teachers) + "\n```"
        )
    parts = [title, _site_links(body.strip(), url), note, _site_links(course, url), *toc]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- the chapter pages


def launch_row(name: str, url: str) -> str:
    """One line of HTML: Binder, Colab, and the saved notebook (copied to notebooks/)."""
    u = launch_urls(name, url)
    btn = 'class="btn btn-sm btn-outline-primary labkit-launch"'
    return (
        f'<p class="labkit-launch-row"><a {btn} href="{u["binder"]}">Launch on Binder</a> '
        f'<a {btn} href="{u["colab"]}">Open in Colab</a> '
        f'<a {btn} href="notebooks/{name}" download="{name}">Download {name}</a></p>'
    )


def _plotly_html(spec: dict, index: int, load_js: bool) -> str:
    """A plotly figure drawn by the site's own plotly.js (for a figure saved without a PNG)."""
    fig = json.dumps({"data": spec.get("data", []), "layout": spec.get("layout", {})})
    fig = fig.replace("</", "<\\/")  # nothing in the JSON may close the <script>
    div = f"labkit-plotly-{index}"
    script = '<script src="_static/plotly.min.js"></script>\n' if load_js else ""
    return (
        f'{script}<div id="{div}" class="labkit-plotly"></div>\n'
        f"<script>(function () {{ const f = {fig};\n"
        f'Plotly.newPlot("{div}", f.data, f.layout, {{responsive: true, displaylogo: false}});'
        "\n})();</script>"
    )


def _figure_title(spec: dict) -> str:
    """A plotly figure's title as plain text ("" if it has none)."""
    title = spec.get("layout", {}).get("title", "")
    title = title.get("text", "") if isinstance(title, dict) else str(title)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", title)).strip()


def site_figures(nb: nbformat.NotebookNode) -> int:
    """Each plotly output keeps only its saved PNG; one saved without a PNG is drawn by
    plotly.js instead. Live widget views (none are saved today) fall back to their text.
    Returns how many figures need plotly.js."""
    drawn = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            data.pop(WIDGET, None)
            spec = data.pop(PLOTLY, None)
            if spec is None:
                continue
            if "image/png" not in data:
                data["text/html"] = _plotly_html(spec, drawn, load_js=drawn == 0)
                drawn += 1
            elif title := _figure_title(spec):  # the image's alt text (myst-nb cell option)
                cell.metadata.setdefault("mystnb", {}).setdefault("image", {"alt": title})
    nb.metadata.pop("widgets", None)  # saved widget state would make myst-nb load a CDN
    return drawn


def chapter_notebook(path: Path, url: str) -> tuple[nbformat.NotebookNode, int]:
    """notebooks/<name> as its site page: no Colab set-up cell, launch buttons and the download
    link under the title, figures as in ``site_figures``."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and COLAB_MARK in c.source)]
    first = nb.cells[0]
    if first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{launch_row(path.name, url)}\n\n{rest.lstrip()}"
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(launch_row(path.name, url)))
    return nb, site_figures(nb)


# ---------------------------------------------------------------- glossary and question bank


def _cell(text: str) -> str:
    return (text or "—").replace("\n", " ")


def glossary_page(folder: Path = NOTEBOOKS) -> str:
    """glossary.md: every notebook's key terms (labkit.interview.glossary) in one table."""
    from labkit.interview import bank

    terms = bank.glossary(folder)
    stems = {p.name[:2]: p.stem for p in bank.course_notebooks(folder)}
    rows = [
        f"| {_cell(t['English'])} | {_cell(t['简体'])} | {_cell(t['繁體'])} | "
        f"{_cell(t['meaning'])} | [{t['notebook']}]({stems[t['notebook']]}.ipynb) |"
        for t in terms
    ]
    return "\n".join(
        [
            "# Glossary",
            "",
            f"The {len(terms)} key terms of the course in English, simplified (简体) and "
            "traditional (繁體) Chinese, merged from the Key terms table of every notebook; the "
            "last column links the notebook that introduces each term. In Jupyter, "
            "[interview prep](interview_prep.ipynb) has a filter box over the same table.",
            "",
            "| English | 简体 | 繁體 | meaning | notebook |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _answer(question: str, answer: str) -> str:
    """A question in bold (markdown), its answer hidden as in the notebooks' Interview corners."""
    return f"{question}\n\n<details><summary>Answer</summary>\n\n{answer.strip()}\n\n</details>\n"


def interview_page(folder: Path = NOTEBOOKS) -> str:
    """interview_bank.md: the two lists of ten classics and every notebook's interview
    questions (labkit.interview), answers hidden as in the notebooks."""
    from labkit.interview import bank

    qs = bank.questions(folder)
    titles = bank.notebook_titles(folder)
    parts = [
        "# Interview bank",
        "",
        f"Every interview question of the course: two lists of ten classics, then the "
        f"{len(qs)} questions of the notebooks' Interview corners, answers hidden. In Jupyter, "
        "[interview prep](interview_prep.ipynb) quizzes you on them.",
        "",
        "## The ten classic questions of the source material",
        "",
    ]
    for i, c in enumerate(bank.SOURCE_CLASSICS, 1):
        links = ", ".join(bank.section_link(stem, heading) for stem, heading in c.sections)
        head = f"**{i}. {c.en}**<br>{c.zh_hans}<br>{c.zh_hant}"
        parts.append(_answer(head, f"{c.answer}\n\nSee: {links}."))
    parts += ["## The course's ten classics", ""]
    for i, c in enumerate(bank.CLASSICS, 1):
        see = f"Demonstrated in [{c.notebook}]({c.notebook}.ipynb)."
        parts.append(_answer(f"**{i}. {c.question}**", f"{c.answer}\n\n{see}"))
    parts += ["## Every question, by notebook", ""]
    current = None
    for q in qs:
        if q.notebook != current:
            current = q.notebook
            title = titles.get(q.notebook[:2], q.notebook)
            parts += [f"### {title}", "", f"From [{q.notebook}]({q.notebook}.ipynb).", ""]
        parts.append(_answer(f"**{q.question}**", q.answer))
    return "\n".join(parts)


# ---------------------------------------------------------------- the teacher's guide


def guide_page(path: Path = GUIDE) -> str:
    """teachers_guide.md: the guide ``python -m labkit classroom guide`` wrote, with each
    ``notebooks/NN_x.ipynb`` linked to its chapter page and each notebook in the time table
    linked to its section of the guide."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: `python -m labkit classroom guide` writes it")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"`notebooks/([\w-]+)\.ipynb`", r"[`notebooks/\1.ipynb`](\1.ipynb)", text)
    sections = set(re.findall(r"^### +(.+?)\s*$", text, flags=re.M))

    def row(m: re.Match[str]) -> str:  # | 05 · Quantization math | ... -> a link to its section
        name = m.group(1)
        return f"| [{name}](#{jupyter_slug(name)}) |" if name in sections else m.group(0)

    return re.sub(r"^\| ([^|\[]+?) \|", row, text, flags=re.M)


# ---------------------------------------------------------------- the build


def _mathjax_files() -> Path:
    """MathJax 3, as the PyPI package sphinx-mathjax-offline ships it."""
    try:
        dist = importlib.metadata.distribution("sphinx-mathjax-offline")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            "The site bundles MathJax from the package sphinx-mathjax-offline: "
            "pip install -r requirements.txt"
        ) from None
    return Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))


def copy_mathjax(dest: Path) -> None:
    """The MathJax 3 files the pages use (tex-chtml.js and what it loads) into ``dest``."""
    src = _mathjax_files()
    for f in src.rglob("*"):
        rel = f.relative_to(src).as_posix()
        if f.is_file() and not MATHJAX_UNUSED.match(rel):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest / rel)


def write_source(src: Path, notebooks: list[Path] | None = None) -> list[str]:
    """The whole Sphinx source in ``src``; returns the page names in site order."""
    import plotly

    url = repo_url()
    notebooks = notebook_paths() if notebooks is None else notebooks
    (src / "_static").mkdir(parents=True)
    (src / "_extra" / "notebooks").mkdir(parents=True)
    shutil.copy2(FILES / "conf.py", src / "conf.py")
    shutil.copy2(FILES / "labkit.css", src / "_static" / "labkit.css")
    copy_mathjax(src / "_static" / "mathjax")
    plotly_js = False
    for path in notebooks:
        nb, drawn = chapter_notebook(path, url)
        nbformat.write(nb, src / path.name)
        shutil.copy2(path, src / "_extra" / "notebooks" / path.name)
        plotly_js |= drawn > 0
    if plotly_js:
        shutil.copy2(
            Path(plotly.__file__).parent / "package_data" / "plotly.min.js", src / "_static"
        )
    (src / "glossary.md").write_text(glossary_page(), encoding="utf-8")
    (src / "interview_bank.md").write_text(interview_page(), encoding="utf-8")
    (src / "teachers_guide.md").write_text(guide_page(), encoding="utf-8")
    chapters = [p.stem for p in notebooks if re.match(r"\d\d_", p.name)]
    extra = [p.stem for p in notebooks if p.stem not in chapters] + ["interview_bank", "glossary"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    teachers = ["teachers_guide"]
    home = home_page(readme, chapters, extra, url, teachers)
    (src / "index.md").write_text(home, encoding="utf-8")
    return ["index", *chapters, *extra, *teachers]


def _replace(out: Path, built: Path) -> None:
    """Put the built site at ``out``; an existing ``out`` is replaced only if this built it."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SystemExit(f"{out} exists and was not built by `python -m labkit site`: not touched")
    (built / MARKER).write_text("built by python -m labkit site; replaced by the next build\n")
    (built / ".nojekyll").touch()  # GitHub Pages: serve _static/ as it is
    sources = built / "_sources"  # left empty: the site does not copy its generated sources
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(built), str(out))


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    """Build the course website into _site/ (or --out); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit site", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=SITE, help="output folder (default: _site/)")
    parser.add_argument("--strict", action="store_true", help="fail on any Sphinx warning")
    parser.add_argument("--jobs", "-j", default="1", help="Sphinx parallel jobs (default 1)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from sphinx.cmd.build import build_main
    except ImportError:
        print("The course website needs Sphinx and myst-nb: pip install -r requirements.txt")
        return 1
    start = time.perf_counter()
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="labkit-site-") as tmp:
        src, html = Path(tmp) / "src", Path(tmp) / "build" / "html"
        pages = write_source(src)
        opts = ["-b", "html", "-q", "-j", str(args.jobs), "-d", str(Path(tmp) / "doctrees")]
        opts += ["-W", "--keep-going"] if args.strict else []
        status = build_main([*opts, str(src), str(html)])
        if status != 0:
            print(f"Sphinx failed (exit {status}); {out} is unchanged.")
            return status
        _replace(out, html)
    took = time.perf_counter() - start
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(
        f"Built the course website: {len(pages)} pages in {took:.0f} s, {_size_mb(out):.1f} MB "
        f"in {shown}/\nOpen {shown}/index.html, or serve it (offline, e.g. to a classroom): "
        f"python -m http.server --directory {shown} 8000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
