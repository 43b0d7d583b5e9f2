"""The grade agrees with the notebook, and the instructor's folder keeps every grade.

The grader gives a notebook Jupyter's meaning: the student's code cells (answer cells and cells the
student added) run in notebook order, the last definition winning, and a failing cell costs only what
depends on it. Where grading cannot work as the notebook does (graded code that uses ``nnopt``, or a name
that only a course cell defines), the visible check fails first, in the same words. Errors show the line
of the student's code. Instructors: ``grades.csv`` always holds every graded student and chapter, nbgrader's
export does not overwrite it, the formgrader command works, and the folder can be moved.
"""

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from nbformat.v4 import new_code_cell

import submissions
from autograde import course
from conftest import REPO
from nnopt.exercises import EXERCISES, exercises_of
from test_grading import full, grade, read_grades, scores

pytestmark = pytest.mark.xdist_group("grading")  # one worker runs every grading run, one after another: they share the job uids

CH1, CH2 = "01_gradient_descent", "02_adaptive_optimizers"
SIGN_ERROR = EXERCISES["gd_step"].mistakes[0]

ANSWERS = {
    # an exercise calls another exercise's function and a helper from a cell the student added
    "calls-other": (CH2, {"adamw_step": (
        "def adamw_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2):\n"
        "    return adam_step(shrink(theta, lr, weight_decay), grad, m, v, t, lr, beta1, beta2, eps)\n")}),
    # a typo: the message shows the line
    "typo": (CH1, {"gd_step": "def gd_step(theta, grad, lr):\n    step = lr * grd\n    return theta - step\n"}),
    # graded code that cannot work where the grader runs it
    "uses-nnopt": (CH1, {"gd_step": "from nnopt.optim import gd_step as reference\n\n\ndef gd_step(theta, grad, lr):\n"
                                    "    return reference(theta, grad, lr)\n"}),
    "uses-course-name": (CH1, {"gd_step": "def gd_step(theta, grad, lr):\n    return optim.gd_step(theta, grad, lr)\n"}),
    # imported inside the function: `data` and `optim` are then the function's own names, not the course cell's
    "imports-nnopt-inside": (CH1, {"gd_step": "def gd_step(theta, grad, lr):\n    from nnopt import data, optim\n\n"
                                              "    return optim.gd_step(theta, grad, lr)\n"}),
}
ADDED = {
    "calls-other": [("adamw_step", "def shrink(theta, lr, weight_decay):\n    return theta * (1 - lr * weight_decay)\n")],
    # a failing cell the graded functions do not need, and one that leaves a helper undefined
    "failing-cells": [("gd_step", "plt.plot([1, 2, 3])\n"),
                      ("momentum_step", "raise RuntimeError('not done')\n\ndef unused_helper():\n    return 1\n")],
    "helper-after-error": [("gd_step", "import math\nlog = math.log(-1)\n\ndef scaled(grad, lr):\n    return lr * grad\n")],
    # student-added cells that try to change the verdict
    # an unused import of nnopt (it fails where the grader runs) next to a wrong answer
    "nnopt-cell-and-wrong-answer": [("gd_step", "from nnopt.optim import gd_step as reference\n")],
    "redefines-check": [("gd_step", "check = hidden_test = lambda function: print('✓ all good')\n")],
    "patches-registry": [("gd_step", "import sys\nregistry = sys.modules.get('nnopt.exercises')\n"
                                     "if registry:\n    registry.evaluate = lambda *a: registry.Verdict(True, 'fine')\n")],
}
EXTRA_ANSWERS = {
    "helper-after-error": (CH1, {"gd_step": "def gd_step(theta, grad, lr):\n    return theta - scaled(grad, lr)\n"}),
    "nnopt-cell-and-wrong-answer": (CH1, {"gd_step": SIGN_ERROR.code}),
    "redefines-check": (CH1, {"gd_step": SIGN_ERROR.code}),
    "patches-registry": (CH1, {"gd_step": SIGN_ERROR.code}),
    "failing-cells": (CH1, {}),
}


def notebook_for(student):
    chapter, answers = (ANSWERS.get(student) or EXTRA_ANSWERS[student])
    notebook = submissions.notebook_with(chapter, dict(submissions.solution_answers(chapter), **answers))
    for number, (after, source) in enumerate(ADDED.get(student, []), start=1):
        position = next(i for i, c in enumerate(notebook["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == after)
        notebook["cells"].insert(position + 1, new_code_cell(source, id=f"mine-{number}"))
    return chapter, notebook


def deleted_answer_defined_elsewhere():
    notebook = submissions.notebook_with(CH1, submissions.solution_answers(CH1))
    cells = notebook["cells"]
    position = next(i for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("grade_id") == "gd_step")
    source = submissions.solution_answers(CH1)["gd_step"]
    cells[position] = new_code_cell(source, id="my-own-gd-step")
    return notebook


STUDENTS = sorted(set(ANSWERS) | set(EXTRA_ANSWERS))


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    root, out = tmp_path_factory.mktemp("semantics-in"), tmp_path_factory.mktemp("semantics-out")
    for student in STUDENTS:
        chapter, notebook = notebook_for(student)
        submissions.write(root, student, chapter, notebook)
    submissions.write(root, "answer-cell-deleted", CH1, deleted_answer_defined_elsewhere())
    submissions.write(root, "solution", CH2, submissions.notebook_with(CH2, submissions.solution_answers(CH2)))
    result, _ = grade(root, out)
    return {"root": root, "out": out, "result": result, "grades": read_grades(out)}


def reason(run, student, chapter, exercise):
    return run["grades"][student, chapter, exercise]["reason"]


def test_an_exercise_may_call_another_exercise_and_a_helper_from_an_added_cell(run):
    assert scores(run["grades"], "calls-other", CH2) == full(CH2)
    assert all(reason(run, "calls-other", CH2, e.name) == "" for e in exercises_of(CH2))


def test_a_failing_cell_costs_only_what_depends_on_it(run):
    assert scores(run["grades"], "failing-cells", CH1) == full(CH1)
    assert scores(run["grades"], "helper-after-error", CH1) == dict(full(CH1), gd_step=0.0)
    why = reason(run, "helper-after-error", CH1, "gd_step")
    assert "name 'scaled' is not defined" in why and "line 2 of its cell" in why


def test_a_deleted_answer_cell_is_graded_from_where_the_student_defined_the_function(run):
    assert scores(run["grades"], "answer-cell-deleted", CH1) == full(CH1)
    assert "was deleted" in reason(run, "answer-cell-deleted", CH1, "gd_step")


def test_an_error_shows_the_line_of_the_students_code_in_the_csv_and_the_feedback(run):
    why = reason(run, "typo", CH1, "gd_step")
    assert why == "gd_step raised NameError: name 'grd' is not defined (in gd_step, line 2 of its cell: step = lr * grd)"
    feedback = (run["out"] / "feedback" / "typo" / CH1 / f"{CH1}.html").read_text(encoding="utf-8")
    assert "line 2 of its cell: step = lr * grd" in feedback


@pytest.mark.parametrize("student", ["uses-nnopt", "uses-course-name", "imports-nnopt-inside", "typo"])
def test_the_visible_check_fails_in_the_graders_words_and_is_no_tampering(run, student):
    graded = reason(run, student, CH1, "gd_step")
    assert not graded.startswith("tampering suspected")
    assert graded in check_in_a_kernel(ANSWERS[student][1]["gd_step"])


def test_a_wrong_answer_is_not_blamed_on_an_unused_nnopt_import(run):
    why = reason(run, "nnopt-cell-and-wrong-answer", CH1, "gd_step")
    assert SIGN_ERROR.diagnosis in why and "nnopt" not in why
    assert scores(run["grades"], "nnopt-cell-and-wrong-answer", CH1) == dict(full(CH1), gd_step=0.0)


@pytest.mark.parametrize("student", ["redefines-check", "patches-registry"])
def test_added_cells_cannot_change_the_verdict(run, student):
    assert scores(run["grades"], student, CH1) == dict(full(CH1), gd_step=0.0)
    why = reason(run, student, CH1, "gd_step")
    assert why.startswith("tampering suspected") and SIGN_ERROR.diagnosis in why
    assert f"tampering suspected: {student}/{CH1} gd_step" in run["result"].stderr


def check_in_a_kernel(answer):
    """The visible check's message for ``answer``, run the way a student runs chapter 1: the course's cells
    from the top (prelude, test prelude, the course's imports), the answer cell, then the check."""
    source = course.load_source(CH1)
    head = [course.text(cell) for cell in source["cells"][:4] if cell["cell_type"] == "code"]
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(REPO / "chapters" / CH1))
    try:
        for code in [*head, answer, "check(gd_step)"]:
            reply = client.execute_interactive(code, timeout=120, output_hook=lambda message: None)
        assert reply["content"]["status"] == "error"
        return reply["content"]["evalue"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_grades_csv_keeps_every_chapter_after_a_one_chapter_run(run):
    before = (run["out"] / "grades.csv").read_text(encoding="utf-8")
    again, _ = grade(run["root"], run["out"], "--chapter", CH1)
    assert "already graded" in again.stderr
    after = (run["out"] / "grades.csv").read_text(encoding="utf-8")
    assert sorted(after.splitlines()) == sorted(before.splitlines())
    assert ("solution", CH2, "adamw_step") in read_grades(run["out"])


def nbgrader(out, *arguments):
    command = [str(Path(sys.executable).with_name("nbgrader")), *arguments]
    return subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=300)


def test_nbgrader_export_does_not_overwrite_grades_csv_and_the_folder_can_move(run, tmp_path):
    moved = tmp_path / "elsewhere" / "graded"
    shutil.copytree(run["out"], moved)
    before = (moved / "grades.csv").read_text(encoding="utf-8")
    exported = nbgrader(moved, "export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (moved / "grades.csv").read_text(encoding="utf-8") == before
    with open(moved / "nbgrader_export.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["student_id"] for row in rows} >= {"typo", "solution"}
    regraded, _ = grade(run["root"], moved)
    assert "0 to record, 0 to grade" in regraded.stderr and "Traceback" not in regraded.stderr, regraded.stderr[-2000:]


def formgrader_submissions(out_dir, chapter):
    """What the formgrader, served by a `jupyter server` started in ``out_dir``, lists for ``chapter``."""
    token = "formgrader-test"
    command = [str(Path(sys.executable).with_name("jupyter")), "server", "--no-browser", "--ServerApp.port=0",
               f"--ServerApp.token={token}", *(["--allow-root"] if os.geteuid() == 0 else [])]
    process = subprocess.Popen(command, cwd=out_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            if "http://127.0.0.1:" in line:
                url = line[line.index("http://127.0.0.1:"):].split("/", 3)[:3]
        assert url, "the server did not start"
        base = "/".join(url)
        request = urllib.request.Request(f"{base}/formgrader/api/submissions/{chapter}",
                                         headers={"Authorization": f"token {token}"})
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a proxy must not see loopback traffic
        for attempt in range(60):  # the address is printed a moment before the server answers
            try:
                with direct.open(request, timeout=60) as response:
                    listed = json.loads(response.read())
                break
            except urllib.error.URLError:
                time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return {entry["student"]: entry for entry in listed}


def test_formgrader_serves_the_graded_folder(run):
    by_student = formgrader_submissions(run["out"], CH2)
    assert by_student["solution"]["score"] == sum(full(CH2).values())
    assert by_student["calls-other"]["score"] == sum(full(CH2).values())


def test_feedback_reads_offline(run):
    html = (run["out"] / "feedback" / "typo" / CH1 / f"{CH1}.html").read_text(encoding="utf-8")
    assert "cdnjs" not in html and 'src="http' not in html and 'href="http' not in html
    assert '<script src="../../_mathjax/load.js"></script>' in html
    assert (run["out"] / "feedback" / "_mathjax" / "tex-chtml.js").is_file()
    assert "{term}" not in html and ":::{margin}" not in html and "{cite}" not in html


def validate_like_the_button(monkeypatch, path, **overrides):
    """What JupyterLab's Validate button does: nbgrader's Validator, configured from the folder the server
    runs in (the repository, for `./course lab`)."""
    from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler
    from nbgrader.validator import Validator

    monkeypatch.chdir(REPO)
    config = ValidateAssignmentHandler.load_config(None)
    for key, value in overrides.items():
        setattr(config.Execute, key, value)
    return Validator(config=config).validate(str(path))


def test_validate_button_says_which_exercise_fails(monkeypatch, tmp_path):
    answers = dict(submissions.solution_answers(CH1), momentum_step=EXERCISES["momentum_step"].mistakes[0].code)
    path = submissions.write(tmp_path, "me", CH1, submissions.notebook_with(CH1, answers))
    result = validate_like_the_button(monkeypatch, path)
    assert [cell["source"].splitlines()[0] for cell in result.get("failed", [])] == ["check(momentum_step)"]


def test_validate_button_fails_when_a_cell_runs_out_of_time(monkeypatch, tmp_path):
    """A cell that runs out of time fails the validation (nbgrader's default interrupts it and reports success)."""
    notebook = submissions.notebook_with(CH1, submissions.solution_answers(CH1))
    notebook["cells"].insert(2, new_code_cell("import time\ntime.sleep(30)\n", id="slow"))
    path = submissions.write(tmp_path, "me", CH1, notebook)
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        validate_like_the_button(monkeypatch, path, timeout=2)
