"""Sphinx configuration of the course website (copied into the generated source by
``python -m labkit site``; see labkit/course/site.py). Everything the pages load is in the site
folder: no CDN, no fonts or scripts from another host."""

from labkit.course.site import BRANCH, repo_url

project = "Efficient Deep Learning Lab"
author = "the Efficient Deep Learning Lab authors"
copyright = "the Efficient Deep Learning Lab authors, MIT licence"
language = "en"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
exclude_patterns = ["_extra", "_static", "**.ipynb_checkpoints"]

# The notebooks are saved executed and checked by nbval: show their outputs, run nothing.
nb_execution_mode = "off"
nb_render_markdown_format = "myst"  # text/markdown outputs (interview prep) get tables and math
nb_ipywidgets_js = {}  # never load the widget manager from a CDN (no live widgets are saved)
nb_merge_streams = True

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True
# Headings get JupyterLab's anchors, so notebook links such as 05_x.ipynb#4.-An-activation work.
myst_heading_anchors = 6
myst_heading_slug_func = "labkit.course.site.jupyter_slug"

# MathJax 3 from the package sphinx-mathjax-offline, copied to _static/mathjax by the build.
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"startup": {"typeset": True}}

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["labkit.css"]
html_extra_path = ["_extra"]  # notebooks/*.ipynb: the saved notebooks, for the download links
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
# pydata-sphinx-theme logs a console error on a first visit unless the mode is named.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "repository_url": repo_url(),
    "repository_branch": BRANCH,
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": False,  # each chapter links its saved notebook under the title
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navbar_persistent": [],  # the sidebar has the search field; no second one in a header bar
    "launch_buttons": {
        "notebook_interface": "jupyterlab",
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
    },
}
