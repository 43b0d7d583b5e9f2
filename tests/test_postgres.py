"""A term graded in 3 concurrent shards into PostgreSQL gets the grades of one run into SQLite.

The tests start their own PostgreSQL server (Debian's package, in a temporary folder, on a unix
socket; see ``postgres_server.py``) and skip only where PostgreSQL is not installed. One shard is
killed with SIGKILL part way and started again; an instructor writes a manual grade through
nbgrader's gradebook API (as the formgrader does) while shards run. Then ``--report-only`` writes
``grades.csv`` and the feedback from the database alone, and ``nbgrader export`` and the formgrader
work on the shared database. A shard started twice waits for the first. Bad input (a shard spec, an
unreachable database, another course's gradebook) is one line of error and exit status 2.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from nbgrader.api import Gradebook

import postgres_server
import submissions
from autograde import __main__ as command_line
from autograde.database import Database
from autograde.shard import Shard
from conftest import REPO, require_command
from nnopt.exercises import exercises_of
from test_grading import full
from test_grading_semantics import formgrader_submissions, nbgrader

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading")]  # with the other grading runs: they share the job uids

CH1, CH2 = "01_gradient_descent", "02_adaptive_optimizers"
SHARDS = 3
VICTIM = Shard(1, SHARDS)  # killed part way, then started again
MANUAL_SCORE = 0.5


def partial(chapter):
    """The first half of the exercises solved, the rest left as the student edition's stubs."""
    names = [e.name for e in exercises_of(chapter)]
    answers = submissions.solution_answers(chapter)
    return submissions.notebook_with(chapter, {name: answers[name] for name in names[: len(names) // 2]})


def solved(chapter, **answers):
    return submissions.notebook_with(chapter, dict(submissions.solution_answers(chapter), **answers))


TYPO = "def gd_step(theta, grad, lr):\n    return theta - lr * grd\n"
# Every reason in grades.csv is the same in every run (no numbers drawn from the grading seed), so two
# runs' files can be compared whole. Shards of 3: fay, hana, ivo, "bad name!" | chen, eli, jun, kai | the rest.
TERM = {
    "ada": {CH1: solved(CH1), CH2: solved(CH2)},
    "ben": {CH1: partial(CH1), CH2: partial(CH2)},
    "chen": {CH1: submissions.student_edition(CH1), CH2: submissions.student_edition(CH2)},
    "dara": {CH1: solved(CH1, gd_step=TYPO), CH2: solved(CH2)},
    "eli": {CH1: solved(CH1), CH2: partial(CH2)},
    "fay": {CH1: partial(CH1), CH2: solved(CH2)},
    "gus": {CH1: solved(CH1)},  # no chapter 2 folder: a row that says so
    "hana": {CH1: submissions.student_edition(CH1), CH2: solved(CH2)},
    "ivo": {CH1: solved(CH1), CH2: solved(CH2)},
    "jun": {CH1: partial(CH1), CH2: submissions.student_edition(CH2)},
    "kai": {CH1: solved(CH1), CH2: solved(CH2)},
    "lea": {CH1: submissions.student_edition(CH1), CH2: partial(CH2)},
    "bad name!": {CH1: solved(CH1)},  # an invalid student id: a problem row, kept by the shard it hashes to
}
STUDENTS = [student for student in TERM if student != "bad name!"]
EVERYONE = {(student, chapter) for student in STUDENTS for chapter in (CH1, CH2)}


def autograde(*arguments):
    return [sys.executable, "-m", "autograde", *map(str, arguments)]


def sorted_lines(path):
    return sorted(Path(path).read_text(encoding="utf-8").splitlines())


def recorded(url, shard=None, stored=False):
    """{(student, chapter): verdict} of the rows recorded in the database so far (of ``shard``, if given); with
    ``stored``, also the verdicts stored but not yet recorded in the gradebook (the grader stores one first)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT student, chapter, shard, verdict FROM autograde_verdict "
                                              "WHERE recorded OR :stored"), {"stored": stored}).all()
    except sa.exc.ProgrammingError:  # no table yet
        rows = []
    finally:
        engine.dispose()
    return {(r.student, r.chapter): json.loads(r.verdict) for r in rows if shard is None or r.shard == str(shard)}


def graded_in(log):
    """(student, chapter) pairs a run's log says it graded."""
    return {tuple(line.split("] ", 1)[1].split(":")[0].split(" ")) for line in log.splitlines() if line.startswith("[")}


@pytest.fixture(scope="module")
def server():
    try:
        with postgres_server.Server() as running:
            yield running
    except postgres_server.Unavailable as why:
        pytest.skip(str(why))


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    root = tmp_path_factory.mktemp("term")
    for student, notebooks in TERM.items():
        for chapter, notebook in notebooks.items():
            submissions.write(root, student, chapter, notebook)
    return root


@pytest.fixture(scope="module")
def reference(term, tmp_path_factory):
    """One unsharded run into SQLite, the default."""
    require_command("bwrap", "bubblewrap")
    out = tmp_path_factory.mktemp("sqlite")
    result = subprocess.run(autograde(term, "--out", out, "--workers", 2), cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]  # graded; the invalid id and gus's missing chapter are problems
    return out


@pytest.fixture(scope="module")
def sharded(server, term, tmp_path_factory):
    """3 shards at once into one PostgreSQL database; shard 1 is killed part way and started again; a manual grade
    is written while shards run; then the report is written from the database alone."""
    url = server.create_database("term")
    base = tmp_path_factory.mktemp("shards")
    logs = {index: open(base / f"shard{index}.log", "w+", encoding="utf-8") for index in range(SHARDS)}
    processes = {index: subprocess.Popen(autograde(term, "--out", base / f"out{index}", "--db", url, "--workers", 1,
                                                   "--shard", f"{index}/{SHARDS}"),
                                         cwd=REPO, stdout=subprocess.DEVNULL, stderr=logs[index], start_new_session=True)
                 for index in range(SHARDS)}
    manual, killed, stored_at_kill, deadline = None, None, None, time.monotonic() + 600
    try:
        while (manual is None or killed is None) and time.monotonic() < deadline:
            done = recorded(url)
            if killed is None and recorded(url, VICTIM):
                os.killpg(processes[VICTIM.index].pid, signal.SIGKILL)
                processes[VICTIM.index].wait()
                killed, stored_at_kill = recorded(url, VICTIM), recorded(url, VICTIM, stored=True)
            others = sorted(key for key, verdict in done.items() if not VICTIM.holds(key[0]))
            if manual is None and others:
                running = [i for i, p in processes.items() if p.poll() is None]
                manual = {"key": others[0], "shards_running": running}
                student, chapter = others[0]
                exercise = exercises_of(chapter)[0].name
                with Gradebook(url, "nnopt") as gradebook:  # what the formgrader does when a grader edits a score
                    grade = gradebook.find_grade(f"{exercise}_tests", chapter, chapter, student)
                    manual["auto_score"] = grade.auto_score
                    grade.manual_score = MANUAL_SCORE
                    gradebook.db.commit()
            time.sleep(0.2)
        for index, process in processes.items():
            process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert manual and killed, "the shards ended before the test could kill one and grade by hand"
    first = {}
    for index, log in logs.items():
        log.seek(0)
        first[index] = log.read()
    restart = subprocess.run(autograde(term, "--out", base / f"out{VICTIM.index}", "--db", url, "--workers", 1,
                                       "--shard", VICTIM), cwd=REPO, capture_output=True, text=True, timeout=600)
    report = subprocess.run(autograde("--out", base / "report", "--db", url, "--report-only"), cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    return {"url": url, "base": base, "first": first, "returncodes": {i: p.returncode for i, p in processes.items()},
            "killed": killed, "stored_at_kill": stored_at_kill, "manual": manual, "restart": restart, "report": report, "final": recorded(url)}


def test_three_shards_with_one_killed_give_the_grades_of_one_sqlite_run(sharded, reference):
    assert sharded["restart"].returncode == 0, sharded["restart"].stderr[-3000:]
    assert sharded["report"].returncode == 0, sharded["report"].stderr[-3000:]
    expected = sorted_lines(reference / "grades.csv")
    assert len(expected) == 1 + len(STUDENTS) * len(exercises_of(CH1) + exercises_of(CH2)) + 1  # header, problem row
    assert sorted_lines(sharded["base"] / "report" / "grades.csv") == expected
    # the last shard to end wrote every shard's rows too
    assert sorted_lines(sharded["base"] / f"out{VICTIM.index}" / "grades.csv") == expected


def test_shards_split_the_students_and_never_grade_one_twice(sharded):
    graded = {index: graded_in(log) for index, log in sharded["first"].items()}
    graded["restart"] = graded_in(sharded["restart"].stderr)
    # what the killed shard had graded: its log lines are written after the gradebook records a verdict, and the
    # restart records a stored verdict without grading it again (so without a log line)
    graded[VICTIM.index] |= set(sharded["stored_at_kill"])
    for index in range(SHARDS):
        if index != VICTIM.index:
            # 1: each has a problem to report, the invalid student id (shard 0) or gus's missing chapter (shard 2)
            assert sharded["returncodes"][index] == 1, sharded["first"][index][-3000:]
            assert graded[index] == {key for key in EVERYONE if Shard(index, SHARDS).holds(key[0])}
    assert graded[VICTIM.index] | graded["restart"] == {key for key in EVERYONE if VICTIM.holds(key[0])}
    assert not set(sharded["killed"]) & graded["restart"], "the restarted shard graded again what it had finished"
    assert sum(map(len, graded.values())) == len(EVERYONE), "a submission was graded twice"
    engine = sa.create_engine(sharded["url"])
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT student, chapter, shard FROM autograde_verdict")).all()
    engine.dispose()
    assert {(r.student, r.chapter) for r in rows} == EVERYONE
    assert all(Shard.parse(r.shard).holds(r.student) for r in rows), "a row was written by a shard that does not own it"


def test_a_killed_shard_restarts_without_regrading_what_it_recorded(sharded):
    killed, final = sharded["killed"], sharded["final"]
    assert 0 < len(killed) < sum(1 for key in final if VICTIM.holds(key[0])), "the shard should be killed part way"
    unrecorded = len(sharded["stored_at_kill"]) - len(killed)
    assert f"{len(killed)} already graded, {unrecorded} to record" in sharded["restart"].stderr
    for key, verdict in killed.items():  # a new grading would have drawn new seeds
        assert final[key] == verdict


def test_a_manual_grade_written_while_shards_run_survives(sharded):
    manual = sharded["manual"]
    assert manual["shards_running"], "no shard was running when the manual grade was written"
    student, chapter = manual["key"]
    exercise = exercises_of(chapter)[0].name
    with Gradebook(sharded["url"], "nnopt") as gradebook:
        grade = gradebook.find_grade(f"{exercise}_tests", chapter, chapter, student)
        assert (grade.manual_score, grade.auto_score) == (MANUAL_SCORE, manual["auto_score"])
        assert grade.score == MANUAL_SCORE


def test_export_and_formgrader_work_on_the_shared_database(sharded):
    report = sharded["base"] / "report"
    assert "postgresql+psycopg://" in (report / "nbgrader_config.py").read_text(encoding="utf-8")
    student, chapter = sharded["manual"]["key"]
    verdict = sharded["final"][student, chapter]
    first = verdict["exercises"][0]
    with_manual = sum(e["score"] for e in verdict["exercises"]) - first["score"] + MANUAL_SCORE

    exported = nbgrader(report, "export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    rows = [line.split(",") for line in (report / "nbgrader_export.csv").read_text(encoding="utf-8").splitlines()[1:]]
    scores = {(row[3], row[0]): float(row[9]) for row in rows}
    assert set(scores) == EVERYONE
    assert scores[student, chapter] == with_manual

    listed = formgrader_submissions(report, chapter)
    assert listed[student]["score"] == with_manual
    solved_all = next(name for name in ("ada", "ivo") if name != student)  # full marks in both chapters, no manual grade
    assert listed[solved_all]["score"] == sum(full(chapter).values())
    feedback = report / "feedback" / solved_all / chapter / f"{chapter}.html"
    assert feedback.is_file() and "_mathjax/load.js" in feedback.read_text(encoding="utf-8")


def one_line_error(capsys, *arguments):
    """Run the command in this process; return its error output, checking that it is one line and exit status 2."""
    require_command("bwrap", "bubblewrap")  # the sandbox is checked before the database
    try:
        status = command_line.main(list(map(str, arguments)))
    except SystemExit as stop:  # argparse
        status = stop.code
    error = capsys.readouterr().err
    assert status == 2 and len(error.strip().splitlines()) == 1 and "Traceback" not in error, error
    return error


@pytest.mark.parametrize("spec", ["3/2", "0/0", "-1/2", "a/b", "1", "1/2/3"])
def test_a_bad_shard_spec_is_a_usage_error(capsys, tmp_path, term, spec):
    error = one_line_error(capsys, term, "--out", tmp_path, f"--shard={spec}")
    assert "--shard" in error
    assert not (tmp_path / "grades.csv").exists()


def test_report_only_takes_no_submissions(capsys, tmp_path, term):
    assert "--report-only" in one_line_error(capsys, term, "--out", tmp_path, "--report-only")


def test_an_unreachable_database_is_one_line_without_the_password(capsys, tmp_path, term):
    url = f"postgresql://grader:s3cret@/nnopt?host={tmp_path / 'no-server-here'}"
    error = one_line_error(capsys, term, "--out", tmp_path / "out", "--db", url)
    assert "cannot reach the database" in error and "s3cret" not in error


def test_a_shard_needs_a_database_server(capsys, tmp_path, term):
    assert "needs a database server" in one_line_error(capsys, term, "--out", tmp_path, "--shard", "0/2")


def test_another_courses_gradebook_is_refused_untouched(capsys, server, tmp_path, term):
    url = server.create_database("other_course")
    with Gradebook(url, "ml101") as gradebook:
        gradebook.add_assignment("ps1")
    error = one_line_error(capsys, term, "--out", tmp_path, "--db", url)
    assert "another course's gradebook" in error and "ml101" in error
    engine = sa.create_engine(url)
    assert not [name for name in sa.inspect(engine).get_table_names() if name.startswith("autograde")]
    engine.dispose()


def test_a_shard_started_twice_waits_for_the_first_then_finds_everything_graded(sharded, term, tmp_path):
    shard = Shard(0, SHARDS)
    with Database(sharded["url"]) as first:
        first.claim(shard)  # as if the shard still ran, on a node the database has not yet seen die
        second = subprocess.Popen(autograde(term, "--out", tmp_path, "--db", sharded["url"], "--shard", shard),
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        said = second.stderr.readline()
        time.sleep(1)
        assert said.startswith(f"waiting: shard {shard} is being graded") and second.poll() is None, said
    _, rest = second.communicate(timeout=600)
    assert second.returncode == 1 and "0 to record, 0 to grade" in rest, rest[-3000:]


def test_the_guides_kubernetes_example_is_an_indexed_job_of_as_many_shards_as_tasks():
    page = (REPO / "book" / "grading.md").read_text(encoding="utf-8")
    (manifest,) = re.findall(r"```yaml\n(.*?)```", page, re.S)
    job = yaml.safe_load(manifest)
    assert (job["kind"], job["spec"]["completionMode"]) == ("Job", "Indexed")
    container = job["spec"]["template"]["spec"]["containers"][0]
    environment = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert int(environment["SHARDS"]) == job["spec"]["completions"]
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in container["args"][0]
