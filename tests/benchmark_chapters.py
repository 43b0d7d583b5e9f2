"""Time budgets of the chapters: each one executed as the book build runs it, and as a student runs it.

    .venv/bin/python tests/benchmark_chapters.py [CHAPTER ...] [--student]

Executes each solution notebook top to bottom (widgets precompute every frame, as
in the book build) and prints its wall-clock time against the budget of
shared/course-design.md (60 s on 2 CPU cores), with the slowest cells. With
``--student`` it executes the student edition instead (stubs untouched, demos on
the reference, live widgets), as "Run All" in JupyterLab does. Machines differ
about 3x in speed, so this script measures and reports; the test suite asserts
no wall-clock time. Exits 1 if a chapter is over budget, so that it can gate a
release on a known machine.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograde import course  # noqa: E402

BUDGET_SECONDS = 60.0


def execute(path, static_widgets):
    """Run the notebook at ``path``; return (seconds, [(seconds, first line) per code cell])."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    environment = dict(os.environ, NNOPT_WIDGETS="static" if static_widgets else "live")
    cells = []
    with client.setup_kernel(env=environment):
        started = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            begun = time.perf_counter()
            client.execute_cell(cell, index)
            if cell.cell_type == "code":
                cells.append((time.perf_counter() - begun, cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""))
        seconds = time.perf_counter() - started
    return seconds, cells


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", default=course.chapters(), help="chapter ids (default: all)")
    parser.add_argument("--student", action="store_true", help="run the student edition (chapters/) instead")
    args = parser.parse_args(argv)
    over = []
    print(f"{'chapter':26s} {'seconds':>8s}  slowest cells (budget {BUDGET_SECONDS:g} s, {os.cpu_count()} cores)")
    for chapter in args.chapters:
        path = (course.CHAPTERS / chapter / f"{chapter}.ipynb") if args.student else course.source_path(chapter)
        seconds, cells = execute(path, static_widgets=not args.student)
        slowest = sorted(cells, reverse=True)[:3]
        print(f"{chapter:26s} {seconds:8.1f}  " + "; ".join(f"{s:.1f} s `{line}`" for s, line in slowest), flush=True)
        if seconds > BUDGET_SECONDS:
            over.append(chapter)
    if over:
        print(f"over budget: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
