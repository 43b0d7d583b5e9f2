"""Grading end to end, through the README's command: honest, wrong, blank and malformed
submissions get exactly their marks; the gradebook, CSV and feedback agree; nothing of the
course is modified; a killed run resumes without losing or repeating a grade."""

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

import submissions
from autograde import course
from conftest import REPO, require_command
from nnopt.exercises import EXERCISES, exercises_of

pytestmark = pytest.mark.xdist_group("grading")  # one worker runs every grading run, one after another: they share the job uids

CHAPTERS = course.chapters()
FIRST = CHAPTERS[0]
MUTANTS = [(e, m) for e in EXERCISES.values() for m in e.mistakes]


def mutant_packs(chapter):
    """Known mistakes packed into few submissions: submission k answers each exercise with its k-th
    mistake, or with the solution where it has fewer. Each exercise is graded on its own, so every
    mistake is graded, and each pack also shows that the exercises without a mistake keep full marks."""
    exercises = exercises_of(chapter)
    return [
        {e.name: e.mistakes[k] for e in exercises if k < len(e.mistakes)}
        for k in range(max((len(e.mistakes) for e in exercises), default=0))
    ]


def pack_id(k):
    """Student ``mutants-k`` submits every chapter: its k-th pack, or the solution where the chapter has fewer
    (students who submit one chapter each would add a missing, zero-mark submission for every other chapter)."""
    return f"mutants-{k:02d}"


def grade(submissions_dir, out_dir, *extra, workers=2):
    require_command("bwrap", "bubblewrap")
    command = [sys.executable, "-m", "autograde", str(submissions_dir), "--out", str(out_dir), "--workers", str(workers), *extra]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1150)
    return result, time.perf_counter() - started


def read_grades(out_dir):
    with open(Path(out_dir) / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {(r["student_id"], r["chapter"], r["exercise"]): r for r in rows}


def tree_digest(*folders):
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


PACKS = {chapter: mutant_packs(chapter) for chapter in CHAPTERS}
MUTANT_STUDENTS = max(map(len, PACKS.values()))


def mutant_id(exercise, mistake):
    return f"m-{exercise.name}-{mistake.name}".replace("_", "-")


def pack_of(exercise, mistake):
    """(student id, pack) of the submission that grades ``mistake``."""
    for k, pack in enumerate(PACKS[exercise.chapter]):
        if pack.get(exercise.name) is mistake:
            return pack_id(k), pack
    raise LookupError(mistake.name)


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """One grading run over honest, mutant and malformed submissions."""
    root = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("graded")
    for chapter in CHAPTERS:
        answers = submissions.solution_answers(chapter)
        submissions.write(root, "solution", chapter, submissions.notebook_with(chapter, answers))
        submissions.write(root, "blank", chapter, submissions.student_edition(chapter))
    for k in range(MUTANT_STUDENTS):
        for chapter in CHAPTERS:
            pack = PACKS[chapter][k] if k < len(PACKS[chapter]) else {}
            answers = dict(submissions.solution_answers(chapter), **{name: m.code for name, m in pack.items()})
            submissions.write(root, pack_id(k), chapter, submissions.notebook_with(chapter, answers))

    good = submissions.notebook_with(FIRST, submissions.solution_answers(FIRST))
    submissions.write(root, "bad-json", FIRST, raw='{"cells": [')
    submissions.write(root, "not-a-notebook", FIRST, raw="[1, 2, 3]")
    submissions.write(root, "huge", FIRST, raw=b'{"cells": [], "x": "' + b"0" * (200 * 2**20) + b'"}')
    (root / "no-notebook" / FIRST).mkdir(parents=True)
    (root / "empty-folder").mkdir()
    submissions.write(root, "renamed", FIRST, good, name="my work (1).ipynb")
    edited = json.loads(json.dumps(good))
    tests = [c for c in edited["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    tests[0]["source"] = "pass  # no tests here"
    edited["cells"].remove(tests[1])
    submissions.write(root, "edited-tests", FIRST, edited)
    other_language = dict(good, metadata={"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}})
    submissions.write(root, "kernel-r", FIRST, other_language)
    for student, wrong_first in (("duplicate-fixed-later", True), ("duplicate-broken-later", False)):
        duplicated = json.loads(json.dumps(good))
        first_answer = next(i for i, c in enumerate(duplicated["cells"]) if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
        wrong = json.loads(json.dumps(duplicated["cells"][first_answer]))
        wrong["source"], wrong["id"] = exercises_of(FIRST)[0].mistakes[0].code, "a-copy"
        duplicated["cells"].insert(first_answer + (0 if wrong_first else 1), wrong)
        submissions.write(root, student, FIRST, duplicated)
    if len(CHAPTERS) > 1:
        other = CHAPTERS[1]
        submissions.write(root, "wrong-chapter", FIRST, submissions.notebook_with(other, submissions.solution_answers(other)))

    before = tree_digest(REPO / "solutions", REPO / "chapters")
    result, seconds = grade(root, out)
    return {"result": result, "seconds": seconds, "out": out, "grades": read_grades(out), "root": root,
            "course_unchanged": before == tree_digest(REPO / "solutions", REPO / "chapters")}


def scores(grades, student, chapter):
    return {e.name: float(grades[student, chapter, e.name]["score"]) for e in exercises_of(chapter)}


def full(chapter):
    return {e.name: float(e.points) for e in exercises_of(chapter)}


def test_exit_status_reports_the_malformed_submissions(graded):
    assert graded["result"].returncode == 1, graded["result"].stderr[-3000:]
    assert "problem: bad-json" in graded["result"].stderr


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_gets_full_marks_and_blank_gets_zero(graded, chapter):
    grades = graded["grades"]
    assert scores(grades, "solution", chapter) == full(chapter)
    assert all(grades["solution", chapter, e.name]["reason"] == "" for e in exercises_of(chapter))
    assert set(scores(grades, "blank", chapter).values()) == {0.0}
    assert all("not implemented yet" in grades["blank", chapter, e.name]["reason"] for e in exercises_of(chapter))
    for k in range(len(PACKS[chapter]), MUTANT_STUDENTS):  # the mutant students hand in the solution here
        assert scores(grades, pack_id(k), chapter) == full(chapter)


@pytest.mark.parametrize("exercise,mistake", MUTANTS, ids=[mutant_id(e, m) for e, m in MUTANTS])
def test_each_known_mistake_loses_exactly_its_exercise(graded, exercise, mistake):
    grades = graded["grades"]
    student, pack = pack_of(exercise, mistake)
    expected = dict(full(exercise.chapter), **{name: 0.0 for name in pack})
    assert scores(grades, student, exercise.chapter) == expected
    assert mistake.expected_phrase in grades[student, exercise.chapter, exercise.name]["reason"]
    feedback = graded["out"] / "feedback" / student / exercise.chapter / f"{exercise.chapter}.html"
    assert "NotPassed" in feedback.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "student,reason",
    [
        ("bad-json", "not valid notebook JSON"),
        ("not-a-notebook", "not a notebook"),
        ("huge", "the limit is 20 MB"),
        ("no-notebook", "no notebook (.ipynb)"),
        ("empty-folder", f"no folder {FIRST}/ was submitted"),
        ("wrong-chapter", "this is the notebook of chapter"),
    ],
)
def test_malformed_submission_gets_zero_with_a_reason(graded, student, reason):
    if student == "wrong-chapter" and len(CHAPTERS) < 2:
        pytest.skip("needs a second chapter")
    grades = graded["grades"]
    assert set(scores(grades, student, FIRST).values()) == {0.0}
    assert all(reason in grades[student, FIRST, e.name]["reason"] for e in exercises_of(FIRST))


@pytest.mark.parametrize(
    "student,note",
    [
        ("renamed", "graded my work (1).ipynb"),
        ("edited-tests", "the course's version was run"),
        ("kernel-r", "kernel language was changed to 'R'"),
    ],
)
def test_harmless_oddities_are_graded_with_a_note(graded, student, note):
    grades = graded["grades"]
    assert scores(grades, student, FIRST) == full(FIRST)
    assert any(note in grades[student, FIRST, e.name]["reason"] for e in exercises_of(FIRST))


def test_duplicate_answer_cell_the_last_definition_wins_as_in_run_all(graded):
    grades = graded["grades"]
    first = exercises_of(FIRST)[0]
    assert scores(grades, "duplicate-fixed-later", FIRST) == full(FIRST)
    assert scores(grades, "duplicate-broken-later", FIRST) == dict(full(FIRST), **{first.name: 0.0})
    assert first.mistakes[0].diagnosis in grades["duplicate-broken-later", FIRST, first.name]["reason"]
    for student in ("duplicate-fixed-later", "duplicate-broken-later"):
        assert "appears 2 times" in grades[student, FIRST, first.name]["reason"]
        others = [e.name for e in exercises_of(FIRST) if e.name != first.name]
        assert all(grades[student, FIRST, name]["reason"] == "" for name in others), "a note landed on another exercise"


def test_gradebook_and_feedback_show_the_same_scores_as_the_csv(graded):
    out, grades = graded["out"], graded["grades"]
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "nnopt") as gradebook:
        for (student, chapter, exercise), row in grades.items():
            if not exercise:
                continue
            submission = gradebook.find_submission_notebook(chapter, chapter, student)
            grade = next(g for g in submission.grades if g.name == f"{exercise}_tests")
            assert grade.score == float(row["score"]), (student, chapter, exercise)
            assert (out / "feedback" / student / chapter / f"{chapter}.html").is_file()


def test_grading_modifies_nothing_of_the_course(graded):
    assert graded["course_unchanged"]


def test_one_submission_alone_with_one_worker(tmp_path):
    """(Its time is measured by tests/benchmark_grading.py, not asserted here.)"""
    answers = submissions.solution_answers(FIRST)
    submissions.write(tmp_path / "in", "alone", FIRST, submissions.notebook_with(FIRST, answers))
    result, _ = grade(tmp_path / "in", tmp_path / "out", workers=1)
    assert result.returncode == 0, result.stderr[-2000:]
    assert scores(read_grades(tmp_path / "out"), "alone", FIRST) == full(FIRST)


def test_an_empty_submissions_folder_is_an_error_with_a_clear_message(tmp_path):
    (tmp_path / "in").mkdir()
    result, _ = grade(tmp_path / "in", tmp_path / "out")
    assert result.returncode == 2 and "has no student folders" in result.stderr
    missing, _ = grade(tmp_path / "nowhere", tmp_path / "out")
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_lms_zip_downloads_are_collected_by_student(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    good = submissions.notebook_with(FIRST, submissions.solution_answers(FIRST))
    with zipfile.ZipFile(downloads / "all submissions.zip", "w") as archive:
        archive.writestr(f"doejane_1234_5678_{FIRST}.ipynb", json.dumps(good))
        archive.writestr(f"smithbob_LATE_9999_{FIRST}.ipynb", json.dumps(submissions.student_edition(FIRST)))
    result, _ = grade(downloads, tmp_path / "out", "--chapter", FIRST)
    assert result.returncode == 0, result.stderr[-2000:]
    grades = read_grades(tmp_path / "out")
    assert scores(grades, "doejane", FIRST) == full(FIRST)
    assert set(scores(grades, "smithbob", FIRST).values()) == {0.0}
    assert all(grades["doejane", FIRST, e.name]["reason"] == "" for e in exercises_of(FIRST))

    missing, _ = grade(downloads, tmp_path / "out3")
    assert missing.returncode == 2 and "--chapter" in missing.stderr


def test_zip_intake_keeps_underscores_skips_unsafe_archives_and_reports_every_file(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    good = json.dumps(submissions.notebook_with(FIRST, submissions.solution_answers(FIRST)))
    with zipfile.ZipFile(downloads / "a.zip", "w") as archive:
        for login in ("o_brien", "li_wei", "li_na"):
            archive.writestr(f"{login}_1234_5678_{FIRST}.ipynb", good)
        archive.writestr("o_brien_1234_5679_notes.txt", "my notes")
    with zipfile.ZipFile(downloads / "evil.zip", "w") as archive:
        archive.writestr("../../escape_1_x.ipynb", "{}")
        archive.writestr("mallory_1_2_x.ipynb", good)
    result, _ = grade(downloads, tmp_path / "out", "--chapter", FIRST)
    assert result.returncode == 1, result.stderr[-2000:]  # graded, with problems to report
    assert "Invalid submission notebook name" not in result.stderr
    grades = read_grades(tmp_path / "out")
    for login in ("o_brien", "li_wei", "li_na"):
        assert scores(grades, login, FIRST) == full(FIRST)
    assert not any(student == "mallory" for student, _, _ in grades)
    assert not (tmp_path / "escape_1_x.ipynb").exists() and not (tmp_path / "out" / "escape_1_x.ipynb").exists()
    with open(tmp_path / "out" / "grades.csv", newline="", encoding="utf-8") as handle:
        reasons = [row["reason"] for row in csv.DictReader(handle)]
    assert any("archive evil.zip was skipped" in r and "outside the folder" in r for r in reasons)
    assert any("o_brien_1234_5679_notes.txt is not a notebook" in r for r in reasons)

    with zipfile.ZipFile(downloads / "b.zip", "w") as archive:
        archive.writestr(f"li_wei_1234_9999_{FIRST}.ipynb", good)
    clash, _ = grade(downloads, tmp_path / "out-clash", "--chapter", FIRST)
    assert clash.returncode == 2 and "two files map to student 'li_wei'" in clash.stderr


def recorded_verdicts(out_dir):
    """{(student, chapter): exercises} of the verdicts a run has recorded so far in OUT_DIR's gradebook."""
    path = Path(out_dir) / "gradebook.db"
    if not path.exists():
        return {}
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
            rows = database.execute("SELECT student, chapter, verdict FROM autograde_verdict WHERE recorded").fetchall()
    except sqlite3.OperationalError:  # the run has not created the table yet, or holds a write lock
        return {}
    return {(student, chapter): json.loads(verdict)["exercises"] for student, chapter, verdict in rows}


def test_killed_run_resumes_without_losing_or_repeating_a_grade(tmp_path):
    require_command("bwrap", "bubblewrap")
    answers = submissions.solution_answers(FIRST)
    slow = dict(answers)
    name = exercises_of(FIRST)[0].name
    slow[name] = "import time\ntime.sleep(4)\n" + answers[name]
    for index in range(4):
        chosen = answers if index == 0 else slow
        submissions.write(tmp_path / "in", f"student{index}", FIRST, submissions.notebook_with(FIRST, chosen))
    command = [sys.executable, "-m", "autograde", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        recorded = recorded_verdicts(tmp_path / "out")
        if recorded:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert recorded and len(recorded) < 4, "the run should be killed part way"

    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(recorded)} already graded" in result.stderr
    after = recorded_verdicts(tmp_path / "out")
    for key, exercises in recorded.items():
        assert after[key] == exercises, "a graded student was graded again"
    grades = read_grades(tmp_path / "out")
    for index in range(4):
        assert scores(grades, f"student{index}", FIRST) == full(FIRST)
    with Gradebook(f"sqlite:///{tmp_path / 'out' / 'gradebook.db'}", "nnopt") as gradebook:
        assert sorted(s.id for s in gradebook.students) == [f"student{i}" for i in range(4)]


def test_concurrent_grading_runs_never_share_a_job_uid():
    hold = "import sys, time; from autograde.sandbox import reserve_slots; print(reserve_slots(int(sys.argv[1])), flush=True); time.sleep(int(sys.argv[2]))"
    first = subprocess.Popen([sys.executable, "-c", hold, "2", "20"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        held = json.loads(first.stdout.readline())
        second = subprocess.run([sys.executable, "-c", hold, "2", "0"], cwd=REPO, capture_output=True, text=True)
        assert not set(held) & set(json.loads(second.stdout)), "two runs got the same slot"
        greedy = subprocess.run([sys.executable, "-c", hold, "64", "0"], cwd=REPO, capture_output=True, text=True)
        assert greedy.returncode != 0 and "worker slots are free" in greedy.stderr
    finally:
        first.kill()
        first.wait()
