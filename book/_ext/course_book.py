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

From each chapter page, readers get to the exercises: a note under the title links
the chapter's student edition (``chapters/``, stubs and checks, no solutions), and
the page's download button offers that notebook instead of the instructor's. When
``repository.url`` is set in ``_config.yml``, the theme's repository button and its
Binder and Colab launch buttons are turned on, and they open the student edition;
when it is empty, none of them is shown.

The term edition (``./course book --without-solutions``, ``NNOPT_BOOK_EDITION=term``)
removes the solution cells instead of collapsing them, and copies no page sources
into the build, so no solution code is in its pages, sources or downloads.
"""

import json
import os
import shutil
from pathlib import Path

from autograde.course import HIDDEN_TESTS_BEGIN, HIDDEN_TESTS_END, SOLUTION_MARKERS, launch_links

EDITION_VARIABLE = "NNOPT_BOOK_EDITION"

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


def _term_edition():
    return os.environ.get(EDITION_VARIABLE) == "term"


def _page_cells(cell):
    """The cells that stand on the book page for one cell of an instructor notebook."""
    grading = cell.get("metadata", {}).get("nbgrader", {})
    if cell["cell_type"] != "code" or not grading:
        return [cell]
    if grading.get("solution"):
        source = [line for line in _lines(cell["source"]) if line.strip() not in SOLUTION_MARKERS]
        tags = cell["metadata"].setdefault("tags", [])
        if _term_edition():  # executed, so the checks below it pass, but not on the page
            tags.append("remove-cell")
            return [dict(cell, source="".join(source))]
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


def _exercises_note(chapter, repository, branch):
    """A Markdown cell under the title: where the exercises of this page are."""
    where = (
        "This edition of the book leaves the solutions out."
        if _term_edition()
        else "This page shows the solutions, collapsed under each exercise."
    )
    links = launch_links(repository, branch, chapter)
    online = (
        f" Or open it online, with the course package installed by its first cell: [Colab]({links['colab']}), "
        f"[Binder]({links['binder']})."
        if links
        else ""
    )
    text = (
        ":::{admonition} Work on the exercises\n:class: tip\n"
        f"{where} To do the exercises yourself, download the "
        f"{{download}}`student edition of this chapter </chapters/{chapter}/{chapter}.ipynb>` "
        "(a notebook with the exercises as stubs, checks that say what is wrong, and every demo) "
        f"and open it in JupyterLab, as the {{doc}}`setup page </book/setup>` explains.{online}\n"
        ":::\n"
    )
    return {"cell_type": "markdown", "id": "exercises-note", "metadata": {}, "source": text}


def notebook_to_page(text, chapter=None, repository="", branch="main"):
    """The book-page version of an instructor notebook (JSON text in, JSON text out)."""
    notebook = json.loads(text)
    cells = [page for cell in notebook["cells"] for page in _page_cells(cell)]
    if chapter is not None:
        cells.insert(1, _exercises_note(chapter, repository, branch))
    notebook["cells"] = cells
    return json.dumps(notebook)


def _repository(app):
    options = app.config.html_theme_options
    return options.get("repository_url", ""), options.get("repository_branch", "") or "main"


def _source_read(app, docname, source):
    if docname.startswith("solutions/"):
        source[0] = notebook_to_page(source[0], docname.split("/")[1], *_repository(app))


def _configure(app, config):
    """Buttons only where they work; in the term edition, no page sources in the build."""
    options = config.html_theme_options
    if options.get("repository_url"):
        options["use_repository_button"] = True
    else:
        options["use_repository_button"] = False
        options["launch_buttons"] = {}
    if _term_edition():
        config.html_copy_source = False


def _chapter_buttons(app, pagename, templatename, context, doctree):
    """On a chapter page, the download and launch buttons give the student edition."""
    if not pagename.startswith("solutions/"):
        if _term_edition():  # no page sources are copied: drop the buttons that would link them
            for group in context.get("header_buttons", []):
                if group.get("label") == "download-buttons":
                    group["buttons"] = [b for b in group["buttons"] if b.get("label") != "download-source-button"]
        return
    chapter = pagename.split("/")[1]
    student = f"chapters/{chapter}/{chapter}.ipynb"
    _, target = app.env.dlfiles[student]
    exercises = {"type": "link", "url": f"{context['pathto']('_downloads', 1)}/{target}", "text": "exercises (.ipynb)",
                 "tooltip": "Download the student edition of this chapter (no solutions)", "icon": "fas fa-file",
                 "label": "download-exercises-button"}
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":  # the page's own sources are the instructor's notebook
            sources = ("download-source-button", "download-notebook-button")
            group["buttons"] = [exercises] + [b for b in group["buttons"] if b.get("label") not in sources]
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                button["url"] = button["url"].replace(f"solutions/{chapter}/{chapter}.ipynb", student)


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
    app.connect("config-inited", _configure)
    app.connect("source-read", _source_read)
    app.connect("html-page-context", _chapter_buttons, priority=900)  # after the theme's (501)
    app.connect("build-finished", _copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
