"""Grade a folder of submissions into ``grades.csv`` and per-student feedback.

Layout in: ``SUBMISSIONS_DIR/<student_id>/<chapter>/<notebook>.ipynb``.
Layout out (an nbgrader course directory): ``grades.csv``, ``feedback/<student>/<chapter>/*.html``,
``source/``, ``submitted/``, ``autograded/``, and, unless ``--db`` names another database,
``gradebook.db``. The database (``autograde.database``) holds nbgrader's gradebook and the trusted
verdicts, one row per student and chapter, which make the run resumable, and the problem rows
(what could not be attributed to a student and chapter, per run scope).

Students are graded in parallel (``workers`` sandboxed jobs at a time); only the
main thread touches the database. A verdict is stored as soon as it is known, and
marked ``recorded`` once nbgrader has it, so a run that is killed and started again
neither loses a grade nor grades anyone twice. ``grades.csv`` is rebuilt from every
stored verdict at the end of every run, so a run of one chapter, or of one shard
(``--shard I/N``: the students whose id hashes to I), keeps the rows of the others;
:func:`report` writes it and every feedback page from the database alone.
"""

import csv
import io
import os
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import course, submission, trusted
from .database import BadDatabase, Database, problem_key
from .gradebook import COURSE_ID, Gradebook, clean, default_db_url
from .sandbox import Limits, Sandbox, reserve_slots
from .shard import Shard

COLUMNS = ["student_id", "chapter", "exercise", "score", "max_score", "reason"]


def atomic_write(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8", errors="replace")  # a stray surrogate must not lose the file
    os.replace(temporary, path)


def _log(message):
    print(message, file=sys.stderr, flush=True)


def discover(submissions_dir, known_chapters, only_chapter=None):
    """Return (pairs to grade, rows for what cannot be graded, chapters in this run)."""
    students, problem_rows, seen_chapters = [], [], set()
    for folder in sorted(p for p in Path(submissions_dir).iterdir() if not p.name.startswith(".")):
        if not folder.is_dir():
            continue
        if not submission.STUDENT_ID.match(folder.name):
            problem_rows.append([folder.name[:64], "", "", 0, 0, "invalid student id (use letters, digits, _ . @ -)"])
            continue
        students.append(folder)
        for chapter_folder in (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if chapter_folder.name in known_chapters:
                seen_chapters.add(chapter_folder.name)
            elif only_chapter is None:
                problem_rows.append([folder.name, chapter_folder.name, "", 0, 0, "unknown chapter folder"])
    chapters = [only_chapter] if only_chapter else sorted(seen_chapters) or list(known_chapters)
    pairs = [(folder, chapter) for folder in students for chapter in chapters]
    return pairs, problem_rows, chapters


def _rows(verdict):
    """CSV rows of one stored verdict: a reason only where points were lost or something was noted."""
    rows = []
    for entry in verdict["exercises"]:
        reason = "" if entry["passed"] and not entry["tampering"] else entry["reason"]
        reason = "; ".join(part for part in (reason, *entry.get("notes", [])) if part)
        rows.append([verdict["student"], verdict["chapter"], entry["exercise"], entry["score"], entry["max_score"],
                     clean(reason)])
    return rows


def write_grades(out_dir, database):
    """Rebuild ``OUT_DIR/grades.csv`` from every verdict and problem row in the database; return the row count."""
    rows = database.problems()
    for verdict in database.verdicts():
        if "exercises" in verdict:
            rows += _rows(verdict)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    atomic_write(Path(out_dir) / "grades.csv", buffer.getvalue())
    return len(rows)


def open_database(out_dir, db_url, known, shard=None):
    """Connect to the run's database (SQLite in ``out_dir`` unless ``db_url``), refuse another course's
    gradebook, and, for a grading run, claim ``shard``. Raises :class:`BadDatabase`."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    database = Database(db_url or default_db_url(out_dir))
    try:
        if shard is not None:
            if shard.count > 1 and not database.server:
                raise BadDatabase(f"--shard {shard} needs a database server that every shard reaches: pass "
                                  "--db postgresql://... (one machine grades in parallel with --workers instead)")
            database.claim(shard, lambda: _log(f"waiting: shard {shard} is being graded into {database.shown} by "
                                                "another process (started twice, or on a node that died before the "
                                                "database noticed); this run starts when that one ends"))
        with database.gradebook_lock():
            database.check_course(COURSE_ID, known)
    except BaseException:
        database.close()
        raise
    return database


def grade_folder(submissions_dir, out_dir, workers=None, solutions=course.SOLUTIONS, unsafe=False,
                 limits=Limits(), submission_seconds=120.0, only_chapter=None, intake_problems=(), db_url=None,
                 shard=Shard()):
    """Grade every submission of ``shard``; return the exit status (0: all graded cleanly, 1: something failed).

    ``intake_problems`` are CSV rows for files that did not make it into the
    submissions folder (from zip intake); they are kept like the run's own problems.
    """
    out_dir = Path(out_dir)
    workers = workers or os.cpu_count() or 1
    known = course.chapters(solutions)
    if only_chapter is not None and only_chapter not in known:
        raise ValueError(f"unknown chapter {only_chapter!r}; known: {', '.join(known)}")
    sandbox = Sandbox(unsafe=unsafe)
    pairs, problem_rows, chapters = discover(submissions_dir, known, only_chapter)
    problem_rows = [list(row) for row in intake_problems] + problem_rows
    if not pairs and not problem_rows:
        raise ValueError(f"{submissions_dir} has no student folders (expected <student_id>/<chapter>/<notebook>.ipynb)")
    pairs = [(folder, chapter) for folder, chapter in pairs if shard.holds(folder.name)]
    problem_rows = [row for row in problem_rows if shard.holds(problem_key(row))]
    with open_database(out_dir, db_url, known, shard) as database:
        return _grade(database, pairs, problem_rows, chapters, out_dir, workers, solutions, sandbox, limits,
                      submission_seconds, only_chapter or "all", shard)


def _grade(database, pairs, problem_rows, chapters, out_dir, workers, solutions, sandbox, limits, submission_seconds,
           scope, shard):
    gradebook = Gradebook(out_dir, database, solutions)
    sources = {chapter: course.load_source(chapter, solutions) for chapter in course.chapters(solutions)}
    releases = {chapter: gradebook.prepare(chapter) for chapter in chapters}

    submissions, verdicts, to_grade, to_record = {}, {}, [], []
    for folder, chapter in pairs:
        sub = submission.read(folder.name, chapter, folder / chapter, sources)
        submissions[folder.name, chapter] = sub
        previous = database.stored(folder.name, chapter)
        if previous and previous["sha256"] == sub.sha256:
            verdicts[folder.name, chapter] = previous["verdict"]
            if not previous["recorded"]:
                to_record.append((folder.name, chapter))
        else:
            to_grade.append((folder.name, chapter))
    done = len(pairs) - len(to_grade) - len(to_record)
    which = f"shard {shard}: " if shard.count > 1 else ""
    _log(f"{which}{len(pairs)} submissions ({len(chapters)} chapter(s)); {done} already graded, "
         f"{len(to_record)} to record, {len(to_grade)} to grade with {workers} worker(s)")

    failures = []
    slots = queue.Queue()
    for slot in reserve_slots(workers):
        slots.put(slot)

    def work(key):
        sub = submissions[key]
        if sub.problem:
            return trusted.ungraded(sub, sub.problem)
        slot = slots.get()
        try:
            return trusted.grade(sub, sources[key[1]], sandbox, limits, slot, submission_seconds)
        finally:
            slots.put(slot)

    def record(key, verdict):
        try:
            autograded = gradebook.record(*key, submission.rebuild(releases[key[1]], submissions[key]))
        except Exception as error:  # one student's gradebook trouble must not stop the others
            failures.append(f"{key[0]}/{key[1]}: {error}")
            for entry in verdict["exercises"]:
                entry["notes"] = entry.get("notes", []) + [f"could not be recorded in the gradebook: {error}"]
            database.save(verdict, False, shard)
        else:
            database.save(verdict, True, shard, autograded)

    started, finished = time.monotonic(), 0
    for key in to_record:
        record(key, verdicts[key])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(work, key): key for key in to_grade}
        for future in as_completed(futures):
            key = futures[future]
            try:
                verdict = future.result()
            except Exception as error:  # a grader bug: say so, keep going
                verdict = trusted.ungraded(submissions[key], f"internal grading error: {error}")
                failures.append(f"{key[0]}/{key[1]}: internal grading error: {error}")
            verdicts[key] = verdict
            database.save(verdict, False, shard)  # stored first: nbgrader's autograde reads it from there
            record(key, verdict)
            finished += 1
            score = sum(e["score"] for e in verdict["exercises"])
            total = sum(e["max_score"] for e in verdict["exercises"])
            _log(f"[{finished}/{len(to_grade)}] {key[0]} {key[1]}: {score:g}/{total:g} "
                 f"({time.monotonic() - started:.1f} s elapsed)")

    failures += [f"{student}/{chapter}: {sub.problem}" for (student, chapter), sub in submissions.items() if sub.problem]
    suspected = []
    for (student, chapter), verdict in sorted(verdicts.items()):
        failures += [f"{student}/{chapter}: {e['reason']}" for e in verdict["exercises"] if e.get("internal_error")]
        suspected += [f"{student}/{chapter} {e['exercise']}" for e in verdict["exercises"] if e.get("tampering")]
    database.replace_problems(scope, shard, problem_rows)
    rows = write_grades(out_dir, database)
    for failure in failures:
        _log(f"problem: {failure}")
    for row in problem_rows:
        _log(f"problem: {row[0] or '-'}/{row[1] or '-'}: {row[5]}")
    for where in suspected:
        _log(f"tampering suspected: {where} (see its reason in grades.csv)")
    if database.server:
        _log(f"gradebook lock: held {database.lock_held:.1f} s ({database.lock_cpu:.1f} s CPU), waited "
             f"{database.lock_waited:.1f} s for other runs")
    _log(f"wrote {out_dir / 'grades.csv'} ({rows} rows, every student and chapter graded into {database.shown}) "
         f"and feedback in {out_dir / 'feedback'}")
    return 1 if failures or problem_rows else 0


def report(out_dir, db_url=None, solutions=course.SOLUTIONS):
    """Write ``grades.csv`` and every recorded submission's feedback into ``out_dir`` from the database alone,
    grading nothing; the folder is then a course directory for ``nbgrader export`` and the formgrader.
    Return the exit status (1 if a feedback page could not be written)."""
    out_dir = Path(out_dir)
    known = course.chapters(solutions)
    with open_database(out_dir, db_url, known) as database:
        gradebook = Gradebook(out_dir, database, solutions)
        for chapter in known:
            gradebook.copy_source(chapter)
        failures, pages = [], 0
        for student, chapter, autograded in database.autograded():
            gradebook.restore(student, chapter, autograded)
            try:
                gradebook.feedback(student, chapter)
                pages += 1
            except RuntimeError as error:
                failures.append(f"{student}/{chapter}: {error}")
        rows = write_grades(out_dir, database)
        for failure in failures:
            _log(f"problem: {failure}")
        _log(f"wrote {out_dir / 'grades.csv'} ({rows} rows) and {pages} feedback pages in {out_dir / 'feedback'} "
             f"from {database.shown}")
    return 1 if failures else 0
