"""Regenerate the student edition ``chapters/`` from ``solutions/`` with nbgrader.

    python -m autograde.student            # rewrite chapters/
    python -m autograde.student --check    # exit 1 if chapters/ is out of date

nbgrader's ``generate_assignment`` replaces each solution by a stub, removes the
hidden tests and locks the test cells. It runs in a throwaway course directory,
so nothing but ``chapters/`` is written. The Markdown cells are then converted from
MyST to plain Markdown (``autograde.markdown``), so that the student edition reads
well in JupyterLab and Colab, and a setup cell goes first: it installs ``nnopt`` from
the repository named in ``_config.yml`` where the notebook is opened without it.

The same run writes ``nnopt/exercises/course_cells.json``: the names that each
chapter's own (non-graded) code cells bind, which the visible checks use to say in
advance what the grader will not run (``nnopt.exercises.program``).
"""

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from nnopt.exercises import program

from . import course
from .markdown import plain_notebook


def generate(release_directory, solutions=course.SOLUTIONS):
    """Write the student edition of every chapter under ``release_directory``; return the notebook paths."""
    paths = []
    with tempfile.TemporaryDirectory() as root:
        c = Config()
        c.CourseDirectory.root = root
        c.CourseDirectory.course_id = "nnopt"
        c.CourseDirectory.source_directory = str(Path(solutions).resolve())
        c.CourseDirectory.release_directory = str(Path(release_directory).resolve())
        c.CourseDirectory.db_url = f"sqlite:///{root}/gradebook.db"
        api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)
        for chapter in course.chapters(solutions):
            result = api.generate_assignment(chapter, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {chapter} failed:\n{result.get('error') or result.get('log')}")
            path = Path(release_directory) / chapter / f"{chapter}.ipynb"
            notebook = plain_notebook(nbformat.read(path, as_version=4))
            first_code = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
            setup = nbformat.v4.new_code_cell(course.setup_cell_source(course.repository()[0]), id=course.SETUP_CELL_ID)
            notebook.cells.insert(first_code, setup)
            nbformat.write(notebook, path)
            paths.append(path)
    return paths


def course_cells(solutions=course.SOLUTIONS):
    """The text of ``course_cells.json``: per chapter, what its course-only code cells bind."""
    entries = {}
    for chapter in course.chapters(solutions):
        sources = [
            course.text(cell)
            for cell in course.load_source(chapter, solutions)["cells"]
            if cell.get("cell_type") == "code" and not course.grading(cell) and not {"prelude", "test-prelude"} & set(course.tags(cell))
        ]
        sources.append(course.setup_cell_source(course.repository()[0]))  # the student edition's first cell
        entries[chapter] = program.describe_course_cells(sources)
    return json.dumps(entries, indent=1, sort_keys=True) + "\n"


def out_of_date(chapters_directory=course.CHAPTERS, solutions=course.SOLUTIONS):
    """Student notebooks under ``chapters_directory`` that differ from a fresh generation (or are missing)."""
    with tempfile.TemporaryDirectory() as fresh:
        stale = []
        for path in generate(fresh, solutions):
            committed = Path(chapters_directory) / path.relative_to(fresh)
            if not committed.is_file() or not filecmp.cmp(path, committed, shallow=False):
                stale.append(str(committed.relative_to(Path(chapters_directory).parent)))
    written = program.COURSE_CELLS_FILE
    if not written.is_file() or written.read_text(encoding="utf-8") != course_cells(solutions):
        stale.append(str(written.relative_to(course.REPO)))
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograde.student", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether chapters/ is up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: {path} (run: python -m autograde.student)")
        return 1 if stale else 0
    for path in generate(course.CHAPTERS):
        print(f"wrote {path.relative_to(course.REPO)}")
    program.COURSE_CELLS_FILE.write_text(course_cells(), encoding="utf-8")
    print(f"wrote {program.COURSE_CELLS_FILE.relative_to(course.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
