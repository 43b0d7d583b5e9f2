"""Every chapter runs as handed out: the student edition with its stubs (checks fail and say so,
demos still run through the fallback). The instructor edition is executed by the book build
(tests/test_book.py); the time budgets are measured by tests/benchmark_chapters.py."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from autograde import course, student

CHAPTERS = course.chapters()


def execute(path, allow_errors, static_widgets):
    notebook = nbformat.read(path, as_version=4)
    environment = dict(os.environ, NNOPT_WIDGETS="static" if static_widgets else "live")
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=environment)
    return notebook


def errors(cell):
    return [output for output in cell.get("outputs", []) if output["output_type"] == "error"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_edition_fails_its_checks_and_demos_still_run(chapter):
    path = course.CHAPTERS / chapter / f"{chapter}.ipynb"
    notebook = execute(path, allow_errors=True, static_widgets=False)
    printed = ""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        printed += "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")
        if course.is_test(cell):
            (error,) = errors(cell)
            assert error["ename"] == "CheckFailed" and "not implemented yet" in error["evalue"]
        else:
            assert not errors(cell), (course.text(cell)[:80], errors(cell))
    assert "is not implemented yet, so this demo uses" in printed


def test_student_edition_is_in_sync_with_solutions():
    assert student.out_of_date() == [], "run ./course student and commit chapters/"
