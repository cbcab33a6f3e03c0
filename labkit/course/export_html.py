"""``python -m labkit export-html OUT``: the saved notebooks as HTML that works offline.

    python -m labkit export-html OUT          # every notebook -> OUT/<name>.html
    python -m labkit export-html OUT 05 08    # only the notebooks whose name starts so
    python -m http.server --directory OUT 8000       # or open OUT/<name>.html from the disk

What ``jupyter nbconvert --to html`` makes (JupyterLab's look, template "lab"), from the saved,
executed notebooks (nothing is run), except that nothing is loaded from another host: plain
nbconvert pages load MathJax 2 and require.js from cdnjs, so their formulas stay raw TeX without
a network. Here MathJax 3 is the copy the course website uses (the PyPI package
sphinx-mathjax-offline), put in ``OUT/_static/mathjax/`` and configured for the notebooks'
``$...$`` and ``$$...$$`` (labkit/course/site_files/export_html.html.j2). Figures are the PNGs
the build saved beside each plotly figure; one saved without a PNG is drawn by plotly.js copied
to ``OUT/_static/`` (as on the website), and saved widget state is dropped (it would load the
widget manager from a CDN). tests/test_export_html.py opens an export in Chromium with every
non-file request blocked and checks that the math is typeset.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import nbformat

from labkit.core.paths import notebook_paths
from labkit.course.site import FILES, copy_mathjax, site_figures

TEMPLATE = "export_html.html.j2"  # in labkit/course/site_files/, extends nbconvert's "lab"
MATHJAX = "_static/mathjax/tex-chtml.js"  # relative to the exported pages


def exporter() -> object:
    """nbconvert's HTMLExporter with the course's offline template."""
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        template_file=str(FILES / TEMPLATE),
        mathjax_url=MATHJAX,
    )


def export_notebook(path: Path, out: Path, html_exporter: object | None = None) -> Path:
    """notebooks/<name>.ipynb -> OUT/<name>.html (OUT/_static must hold MathJax: ``export``)."""
    nb = nbformat.read(path, as_version=4)
    drawn = site_figures(nb)  # PNGs, not plotly's CDN; no saved widget state
    body, _ = (html_exporter or exporter()).from_notebook_node(nb)
    if drawn:
        import plotly

        js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        shutil.copy2(js, out / "_static" / "plotly.min.js")
    target = out / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target


def export(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Export ``notebooks`` (default: all, in course order) into ``out``; returns the pages."""
    notebooks = notebook_paths() if notebooks is None else notebooks
    if not notebooks:
        raise ValueError("no notebooks to export")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MATHJAX).is_file():
        copy_mathjax(out / "_static" / "mathjax")
    html_exporter = exporter()
    return [export_notebook(p, out, html_exporter) for p in notebooks]


def main(argv: list[str] | None = None) -> int:
    """Export the notebooks to OUT/<name>.html; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit export-html", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", type=Path, help="output folder (made if missing)")
    parser.add_argument("only", nargs="*", help="notebook numbers or name prefixes (default: all)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    chosen = [p for p in notebook_paths() if not args.only or p.name.startswith(tuple(args.only))]
    if not chosen:
        print(f"No notebook's name starts with {' or '.join(args.only)}.")
        return 2
    start = time.perf_counter()
    pages = export(args.out, chosen)
    print(
        f"Exported {len(pages)} notebook{'s' * (len(pages) > 1)} to {args.out}/ in {time.perf_counter() - start:.0f} s "
        f"(math by the bundled MathJax in {args.out}/_static/: works offline). "
        f"Open {pages[0]}, or serve the folder: python -m http.server --directory {args.out} 8000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
