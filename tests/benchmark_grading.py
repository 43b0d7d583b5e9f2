"""Throughput of the sandboxed grader against plain, sequential ``nbgrader autograde``.

    .venv/bin/python tests/benchmark_grading.py [--submissions 40] [--workers 2]

Both grade the same Chapter 1 submissions (a mix of full solutions, solutions with
one known mistake, and blank student editions), side by side in one run. Plain
nbgrader executes every submitted notebook top to bottom in a kernel with the
instructor's rights; ``python -m autograde`` runs only the answer cells, each
exercise in its own sandboxed process, ``--workers`` at a time. Prints both
times and the speed-up; exits 1 if the speed-up is below 1.5. First it grades one
full-marks submission of every chapter alone, with one worker, and prints the time
of the whole command against the budget of 20 s per submission.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import submissions  # noqa: E402
from autograde import course  # noqa: E402
from nnopt.exercises import exercises_of  # noqa: E402

CHAPTER = "01_gradient_descent"


def make_submissions(root, count):
    answers = submissions.solution_answers(CHAPTER)
    mistakes = [(e.name, m.code) for e in exercises_of(CHAPTER) for m in e.mistakes]
    for index in range(count):
        if index % 4 == 3:
            notebook = submissions.student_edition(CHAPTER)
        elif index % 4 == 2:
            name, code = mistakes[index % len(mistakes)]
            notebook = submissions.notebook_with(CHAPTER, dict(answers, **{name: code}))
        else:
            notebook = submissions.notebook_with(CHAPTER, answers)
        submissions.write(root, f"student{index:03d}", CHAPTER, notebook)


def plain_nbgrader(root, work):
    """Sequential `nbgrader autograde` of the same submissions in a fresh course directory."""
    (work / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.source_directory = {str(course.SOLUTIONS)!r}\n"
        "c.CourseDirectory.course_id = 'benchmark'\n"
    )
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    subprocess.run([nbgrader, "generate_assignment", CHAPTER, "--force"], cwd=work, check=True, capture_output=True)
    for folder in sorted(root.iterdir()):
        target = work / "submitted" / folder.name / CHAPTER
        target.mkdir(parents=True)
        shutil.copy(folder / CHAPTER / f"{CHAPTER}.ipynb", target)
    started = time.perf_counter()
    subprocess.run([nbgrader, "autograde", CHAPTER, "--force"], cwd=work, check=True, capture_output=True)
    return time.perf_counter() - started


def sandboxed(root, out, workers):
    started = time.perf_counter()
    command = [sys.executable, "-m", "autograde", str(root), "--out", str(out), "--workers", str(workers)]
    subprocess.run(command, cwd=course.REPO, check=True, capture_output=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for chapter in course.chapters():
            alone = scratch / f"alone-{chapter}"
            answers = submissions.solution_answers(chapter)
            submissions.write(alone / "in", "alone", chapter, submissions.notebook_with(chapter, answers))
            seconds = sandboxed(alone / "in", alone / "out", 1)
            print(f"one {chapter} submission, 1 worker, the whole command: {seconds:5.1f} s (budget 20 s)", flush=True)
        make_submissions(scratch / "in", args.submissions)
        print(f"grading {args.submissions} {CHAPTER} submissions", flush=True)
        ours = sandboxed(scratch / "in", scratch / "out", args.workers)
        print(f"python -m autograde, sandboxed, {args.workers} workers: {ours:7.1f} s", flush=True)
        (scratch / "plain").mkdir()
        plain = plain_nbgrader(scratch / "in", scratch / "plain")
        print(f"plain nbgrader autograde, sequential:      {plain:7.1f} s", flush=True)
        speedup = plain / ours
        print(json.dumps({"submissions": args.submissions, "workers": args.workers, "sandboxed_seconds": round(ours, 1),
                          "plain_nbgrader_seconds": round(plain, 1), "speedup": round(speedup, 2)}))
    return 0 if speedup >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
