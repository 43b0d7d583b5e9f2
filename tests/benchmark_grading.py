"""Throughput of the sandboxed grader against plain, sequential ``nbgrader autograde``, and of shards.

    .venv/bin/python tests/benchmark_grading.py [--submissions 40] [--workers 2] [--only-shards]

Both grade the same Chapter 1 submissions (a mix of full solutions, solutions with
one known mistake, and blank student editions), side by side in one run. Plain
nbgrader executes every submitted notebook top to bottom in a kernel with the
instructor's rights; ``python -m autograde`` runs only the answer cells, each
exercise in its own sandboxed process, ``--workers`` at a time. Prints both
times and the speed-up; exits 1 if the speed-up is below 1.5. First it grades one
full-marks submission of every chapter alone, with one worker, and prints the time
of the whole command against the budget of 20 s per submission.

Then, where PostgreSQL is installed (``postgres_server.py`` starts a throwaway server),
it grades the same submissions into PostgreSQL once as one shard with ``--workers``
workers, and once as 2 concurrent shards (``--shard 0/2`` and ``1/2``) with half the
workers each, so both use the same cores: the ratio of their throughputs shows what
sharding costs or gains on one machine (the gradebook lock, a second process). The
one-shard run's CPU time (its sandboxes' included) gives notebooks per hour per busy
core, and its CPU time while holding the gradebook lock the most that all shards
together can record in an hour: the numbers for sizing a cluster (book/grading.md).
With ``--only-shards``, only this part runs.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import postgres_server  # noqa: E402
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


# Runs a command and prints the CPU seconds it and all its descendants used. The sandbox's processes are
# orphaned inside bubblewrap, so their time reaches no waiting parent: as a subreaper, this process reaps them.
MEASURED = """
import ctypes, os, resource, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child, status = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL), 1
while True:
    try:
        pid, code = os.wait()
    except ChildProcessError:
        break
    if pid == child.pid:
        status = os.waitstatus_to_exitcode(code)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(usage.ru_utime + usage.ru_stime)
sys.exit(status)
"""


def shards(root, scratch, count, workers):
    """(wall seconds, CPU seconds of the grader and its sandboxes, CPU seconds spent holding the gradebook lock)
    for ``count`` concurrent shards, ``workers`` each, to grade ``root`` into a fresh PostgreSQL (whose own CPU
    time is not counted)."""
    with postgres_server.Server() as server:
        url = server.create_database("benchmark")
        started = time.perf_counter()
        running = [subprocess.Popen([sys.executable, "-c", MEASURED, sys.executable, "-m", "autograde", str(root),
                                     "--out", str(scratch / f"shard{i}"), "--workers", str(workers), "--db", url,
                                     "--shard", f"{i}/{count}"],
                                    cwd=course.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for i in range(count)]
        outputs = [process.communicate() for process in running]
        seconds = time.perf_counter() - started
    if any(process.returncode != 0 for process in running):
        raise RuntimeError(f"a shard of {count} failed: {outputs[0][1][-2000:]}")
    cpu = sum(float(out) for out, _ in outputs)
    held = sum(float(re.search(r"gradebook lock: held [0-9.]+ s \(([0-9.]+) s CPU\)", log)[1]) for _, log in outputs)
    return seconds, cpu, held


def compare_shards(root, scratch, count, workers):
    """One shard with ``workers`` workers against 2 shards with half as many each, side by side."""
    try:
        one, one_cpu, one_held = shards(root, scratch / "one-shard", 1, workers)
    except postgres_server.Unavailable as why:
        print(f"shards into PostgreSQL: skipped ({why})", flush=True)
        return {}
    two, two_cpu, _ = shards(root, scratch / "two-shards", 2, max(1, workers // 2))
    per_core, lock_ceiling = 3600 * count / one_cpu, 3600 * count / one_held
    print(f"into PostgreSQL, 1 shard, {workers} workers:          {one:7.1f} s ({one_cpu:.0f} CPU s)", flush=True)
    print(f"into PostgreSQL, 2 shards, {max(1, workers // 2)} worker(s) each: {two:7.1f} s ({two_cpu:.0f} CPU s)",
          flush=True)
    print(f"throughput, 2 shards / 1 shard: {one / two:.2f}", flush=True)
    print(f"one shard: {count} notebooks in {one_cpu:.0f} CPU seconds: {per_core:.0f} notebooks per hour per busy core",
          flush=True)
    print(f"the gradebook lock was held for {one_held:.1f} CPU seconds: all shards together can record at most "
          f"{lock_ceiling:.0f} notebooks per hour", flush=True)
    return {"one_shard_seconds": round(one, 1), "two_shards_seconds": round(two, 1),
            "one_shard_cpu_seconds": round(one_cpu), "two_shards_cpu_seconds": round(two_cpu),
            "two_over_one_shard_throughput": round(one / two, 2), "notebooks_per_hour_per_core": round(per_core),
            "lock_held_cpu_seconds": round(one_held, 1), "notebooks_per_hour_lock_ceiling": round(lock_ceiling)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only-shards", action="store_true", help="only the shards into PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.only_shards:
            make_submissions(scratch / "in", args.submissions)
            print(f"grading {args.submissions} {CHAPTER} submissions", flush=True)
            print(json.dumps({"submissions": args.submissions, "workers": args.workers,
                              **compare_shards(scratch / "in", scratch, args.submissions, args.workers)}))
            return 0
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
        sharded = compare_shards(scratch / "in", scratch, args.submissions, args.workers)
        print(json.dumps({"submissions": args.submissions, "workers": args.workers, "sandboxed_seconds": round(ours, 1),
                          "plain_nbgrader_seconds": round(plain, 1), "speedup": round(speedup, 2), **sharded}))
    return 0 if speedup >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
