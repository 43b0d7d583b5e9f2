"""Sphinx extension that turns the instructor notebooks into book pages.

The book executes ``solutions/NN_name/NN_name.ipynb`` directly; nothing is copied
by hand. When Sphinx reads such a notebook (``source-read``), this extension

* strips nbgrader's ``### BEGIN/END SOLUTION`` markers and collapses each solution
  cell behind a "Show solution" toggle;
* moves the hidden part of each test cell into a cell of its own that still
  executes (so the build proves the solution passes) but is removed from the page,
  and drops the test cell's ``raises-exception`` tag (which lets "Run All" go on
  past an unfinished exercise in JupyterLab), so that a failing check fails the build;

and it makes the page work offline: widgets are rendered in their precomputed,
kernel-free mode (``NNOPT_WIDGETS=static``), and MathJax is served from the
pinned ``django-static-mathjax`` package instead of a CDN.
"""

import json
import os
import shutil
from pathlib import Path

from autograde.course import HIDDEN_TESTS_BEGIN, HIDDEN_TESTS_END, SOLUTION_MARKERS

MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y")


def _lines(source):
    return source if isinstance(source, list) else source.splitlines(keepends=True)


def _split_hidden(source):
    """Return (visible lines, hidden lines) of a test cell."""
    visible, hidden, inside = [], [], False
    for line in _lines(source):
        marker = line.strip()
        if marker == HIDDEN_TESTS_BEGIN:
            inside = True
        elif marker == HIDDEN_TESTS_END:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return visible, hidden


def _page_cells(cell):
    """The cells that stand on the book page for one cell of an instructor notebook."""
    grading = cell.get("metadata", {}).get("nbgrader", {})
    if cell["cell_type"] != "code" or not grading:
        return [cell]
    if grading.get("solution"):
        source = [line for line in _lines(cell["source"]) if line.strip() not in SOLUTION_MARKERS]
        tags = cell["metadata"].setdefault("tags", [])
        tags.append("hide-input")
        cell["metadata"]["mystnb"] = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
        return [dict(cell, source="".join(source))]
    tags = [tag for tag in cell.get("metadata", {}).get("tags", []) if tag != "raises-exception"]
    cell = dict(cell, metadata=dict(cell["metadata"], tags=tags))
    visible, hidden = _split_hidden(cell["source"])
    if not hidden:
        return [cell]
    hidden_cell = {
        "id": f"{cell.get('id', 'cell')}-hidden",
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": ["remove-cell"]},
        "outputs": [],
        "source": "".join(hidden),
    }
    return [dict(cell, source="".join(visible).rstrip() + "\n"), hidden_cell]


def notebook_to_page(text):
    """The book-page version of an instructor notebook (JSON text in, JSON text out)."""
    notebook = json.loads(text)
    notebook["cells"] = [page for cell in notebook["cells"] for page in _page_cells(cell)]
    return json.dumps(notebook)


def _source_read(app, docname, source):
    if docname.startswith("solutions/"):
        source[0] = notebook_to_page(source[0])


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import mathjax  # the django-static-mathjax package

    origin = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (origin / part).is_dir():
            shutil.copytree(origin / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin / part, target / part)


def setup(app):
    os.environ["NNOPT_WIDGETS"] = "static"  # inherited by the kernels that execute the pages
    app.connect("source-read", _source_read)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
