"""Command line: grade a folder of submissions. Run ``python -m autograde --help``."""

import argparse
import os
import sys
from pathlib import Path

from . import course, zipcollect
from .run import grade_folder
from .sandbox import MAX_SLOTS, Limits, SandboxUnavailable


def main(argv=None):
    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="python -m autograde",
        description="Grade SUBMISSIONS_DIR/<student_id>/<chapter>/<notebook>.ipynb into OUT_DIR/grades.csv "
        "and OUT_DIR/feedback/. Student code runs only in a sandbox (bubblewrap). SUBMISSIONS_DIR may "
        "instead hold LMS zip downloads of one chapter (name it with --chapter), sorted by student with "
        "--zip-pattern. OUT_DIR is an nbgrader course directory: see the grading guide for the formgrader.",
    )
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", type=Path)
    parser.add_argument("--out", metavar="OUT_DIR", type=Path, required=True, help="where grades, feedback and the gradebook go")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="students graded at once (default: cores)")
    parser.add_argument("--chapter", help="grade only this chapter (e.g. 01_gradient_descent); required for zips")
    parser.add_argument("--zip-pattern", default=zipcollect.DEFAULT_PATTERN,
                        help="regular expression on each file's 'archive/member' path, with named groups student_id "
                        "and file_id (default: <student_id>_[LATE_]<digits>_<anything>.ipynb, underscores allowed "
                        "in the id)")
    parser.add_argument("--solutions", type=Path, default=course.SOLUTIONS, help="instructor notebooks (default: solutions/)")
    parser.add_argument("--wall-seconds", type=float, default=defaults.wall_seconds, help="per exercise, wall clock")
    parser.add_argument("--cpu-seconds", type=int, default=defaults.cpu_seconds, help="per exercise, CPU time")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_bytes >> 20, help="per exercise, address space")
    parser.add_argument("--submission-seconds", type=float, default=120.0, help="per submission, all exercises together")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="run student code without isolation (only for code you trust)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if not 1 <= args.workers <= MAX_SLOTS:
        parser.error(f"--workers must be between 1 and {MAX_SLOTS}")
    limits = Limits(wall_seconds=args.wall_seconds, cpu_seconds=args.cpu_seconds, memory_bytes=args.memory_mb << 20)
    try:
        submissions, intake_problems = args.submissions, []
        if zipcollect.has_archives(submissions):
            if not args.chapter:
                parser.error("zip downloads hold one chapter's submissions: name it with --chapter")
            submissions, intake_problems = zipcollect.collect(submissions, args.out, args.chapter, args.zip_pattern)
        return grade_folder(submissions, args.out, args.workers, args.solutions, args.unsafe_no_sandbox,
                            limits, args.submission_seconds, args.chapter, intake_problems)
    except (SandboxUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
