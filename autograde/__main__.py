"""Command line: grade a folder of submissions. Run ``python -m autograde --help``."""

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.exc import OperationalError

from . import course, zipcollect
from .run import grade_folder, report
from .sandbox import MAX_SLOTS, Limits, SandboxUnavailable
from .shard import Shard


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """A usage error in one line (the usage itself is in --help)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _shard(spec):
    try:
        return Shard.parse(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv=None):
    defaults = Limits()
    parser = _Parser(
        prog="python -m autograde",
        description="Grade SUBMISSIONS_DIR/<student_id>/<chapter>/<notebook>.ipynb into OUT_DIR/grades.csv "
        "and OUT_DIR/feedback/. Student code runs only in a sandbox (bubblewrap). SUBMISSIONS_DIR may "
        "instead hold LMS zip downloads of one chapter (name it with --chapter), sorted by student with "
        "--zip-pattern. OUT_DIR is an nbgrader course directory: see the grading guide for the formgrader, "
        "and for grading a large course on many machines (--db, --shard, --report-only).",
    )
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR", type=Path, nargs="?")
    parser.add_argument("--out", metavar="OUT_DIR", type=Path, required=True, help="where grades, feedback and the gradebook go")
    parser.add_argument("--db", metavar="URL", help="the gradebook's database, a SQLAlchemy URL such as "
                        "postgresql://user@host/dbname (default: SQLite, OUT_DIR/gradebook.db)")
    parser.add_argument("--shard", metavar="I/N", type=_shard, default=Shard(),
                        help="grade only the students whose id hashes to shard I of N (I from 0 to N-1); "
                        "the N shards of a course share one --db")
    parser.add_argument("--report-only", action="store_true",
                        help="grade nothing: write grades.csv and all feedback into OUT_DIR from the database")
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
    if args.report_only:
        if args.submissions is not None or args.shard != Shard():
            parser.error("--report-only grades nothing: give it no SUBMISSIONS_DIR and no --shard")
        return _one_line_errors(report, args.out, args.db, args.solutions)
    if args.submissions is None:
        parser.error("give the SUBMISSIONS_DIR to grade (or --report-only)")
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    if not 1 <= args.workers <= MAX_SLOTS:
        parser.error(f"--workers must be between 1 and {MAX_SLOTS}")
    limits = Limits(wall_seconds=args.wall_seconds, cpu_seconds=args.cpu_seconds, memory_bytes=args.memory_mb << 20)

    def grade():
        submissions, intake_problems = args.submissions, []
        if zipcollect.has_archives(submissions):
            if not args.chapter:
                parser.error("zip downloads hold one chapter's submissions: name it with --chapter")
            submissions, intake_problems = zipcollect.collect(submissions, args.out, args.chapter, args.zip_pattern)
        return grade_folder(submissions, args.out, args.workers, args.solutions, args.unsafe_no_sandbox, limits,
                            args.submission_seconds, args.chapter, intake_problems, args.db, args.shard)

    return _one_line_errors(grade)


def _one_line_errors(function, *args):
    """Run ``function``; bad input, no sandbox, or a database that cannot be used or is lost: one line, status 2."""
    try:
        return function(*args)
    except (SandboxUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    except OperationalError as error:
        print(f"error: the database failed: {str(error.orig or error).strip().splitlines()[0]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
