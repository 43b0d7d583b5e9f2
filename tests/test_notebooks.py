"""Every chapter runs as handed out: the student edition with its stubs, under "Run All" as JupyterLab
does it (checks fail and say so, every later cell still runs, demos use the fallback), and it reads as
plain Markdown. The instructor edition is executed by the book build (tests/test_book.py); the time
budgets are measured by tests/benchmark_chapters.py."""

import os
import queue
import sys
import subprocess
import time

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel

from autograde import course, markdown, student
from conftest import REPO

CHAPTERS = course.chapters()


def run_all_like_jupyterlab(path, environment):
    """Send every code cell to a kernel at once, as JupyterLab's "Run All" does.

    JupyterLab asks the kernel to stop on an error (``stop_on_error``), which makes
    it abort every request queued behind the failing cell, except for cells tagged
    ``raises-exception``. Returns, per code cell, its reply status ("ok", "error",
    "aborted") and its outputs.
    """
    notebook = nbformat.read(path, as_version=4)
    manager, client = start_new_kernel(kernel_name="python3", env=environment, cwd=str(path.parent))
    try:
        cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        requests = {
            client.execute(cell.source, stop_on_error="raises-exception" not in cell.metadata.get("tags", [])): cell
            for cell in cells
        }
        status, outputs, deadline = {}, {msg_id: [] for msg_id in requests}, time.monotonic() + 600
        while len(status) < len(requests) and time.monotonic() < deadline:
            reply = client.get_shell_msg(timeout=600)
            if reply["parent_header"].get("msg_id") in requests:
                status[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
        while True:
            try:
                message = client.get_iopub_msg(timeout=1)
            except queue.Empty:
                break
            parent = message["parent_header"].get("msg_id")
            if parent in outputs and message["msg_type"] in ("stream", "error", "display_data", "execute_result"):
                outputs[parent].append(message["content"])
        return [(cell, status.get(msg_id), outputs[msg_id]) for msg_id, cell in requests.items()]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_run_all_goes_through_the_student_edition(chapter):
    path = course.CHAPTERS / chapter / f"{chapter}.ipynb"
    results = run_all_like_jupyterlab(path, dict(os.environ, NNOPT_WIDGETS="live"))
    printed = ""
    for cell, status, outputs in results:
        printed += "".join(output.get("text", "") for output in outputs)
        errors = [output for output in outputs if "ename" in output]
        assert status != "aborted", f"Run All stopped before: {cell.source[:80]!r}"
        if course.is_test(cell):
            assert status == "error" and errors[0]["ename"] == "CheckFailed", cell.source
            assert "not implemented yet" in errors[0]["evalue"]
        else:
            assert status == "ok" and not errors, (cell.source[:80], errors)
    assert "is not implemented yet, so this demo uses" in printed


def test_student_edition_is_in_sync_with_solutions():
    assert student.out_of_date() == [], "run ./course student and commit chapters/ and nnopt/exercises/course_cells.json"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_edition_is_plain_markdown(chapter):
    notebook = nbformat.read(course.CHAPTERS / chapter / f"{chapter}.ipynb", as_version=4)
    assert markdown.leftovers(notebook) == []
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "{term}" not in text and ":::" not in text and "{cite}" not in text


def test_myst_is_converted_to_plain_markdown():
    converted = markdown.plain_markdown(
        "A {term}`gradient`, {term}`steps <learning rate>`, the {doc}`notation page </book/notation>`, "
        "{cite}`kingma2015,loshchilov2019` and {math}`x^2`.\n\n:::{margin} Two conventions\nSee {cite}`polyak1964`.\n:::\n"
    )
    assert converted == (
        "A *gradient*, *steps*, the notation page, (Kingma and Ba, 2015; Loshchilov and Hutter, 2019) and $x^2$.\n\n"
        "> **Two conventions**\n>\n> See (Polyak, 1964).\n"
    )


def test_course_lab_starts_jupyterlab_even_as_root():
    """`./course lab` must start where containers and CI run: as root, JupyterLab refuses unless told."""
    command = [str(REPO / "course"), "lab", "--no-browser", "--ServerApp.port=0", "--ServerApp.token=test"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    seen, deadline = "", time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            seen += line
            if "http://127.0.0.1:" in line:
                break
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
    assert "http://127.0.0.1:" in seen, seen[-2000:]
    assert "Running as root is not recommended" not in seen


@pytest.mark.parametrize("isolated", [True, False])
def test_setup_cell_installs_nnopt_only_where_it_is_missing(isolated):
    """The student edition's first cell, for a book published with its repository: where nnopt cannot be
    imported (Colab, Binder) it says so and pip-installs it from there; where it can, it does nothing."""
    url = "https://github.com/example-org/nnopt-course"
    program = (
        "import sys, types\n"
        "calls = []\n"
        "sys.modules['subprocess'] = types.SimpleNamespace(run=lambda command, check: calls.append(command))\n"
        f"exec({course.setup_cell_source(url)!r})\n"
        "print('pip:', calls)\n"
    )
    flags = ["-I", "-S"] if isolated else []  # -S: no site-packages, so nnopt cannot be found
    result = subprocess.run([sys.executable, *flags, "-c", program], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    if isolated:
        assert f"Installing the course package nnopt from {url}" in result.stdout
        assert f"'nnopt[notebooks] @ git+{url}'" in result.stdout
    else:
        assert result.stdout == "pip: []\n"
