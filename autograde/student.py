"""Regenerate the student edition ``chapters/`` from ``solutions/`` with nbgrader.

    python -m autograde.student            # rewrite chapters/
    python -m autograde.student --check    # exit 1 if chapters/ is out of date

nbgrader's ``generate_assignment`` replaces each solution by a stub, removes the
hidden tests and locks the test cells. It runs in a throwaway course directory,
so nothing but ``chapters/`` is written.
"""

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from . import course


def generate(release_directory, solutions=course.SOLUTIONS):
    """Write the student edition of every chapter under ``release_directory``; return the notebook paths."""
    paths = []
    with tempfile.TemporaryDirectory() as root:
        c = Config()
        c.CourseDirectory.root = root
        c.CourseDirectory.course_id = "nnopt"
        c.CourseDirectory.source_directory = str(Path(solutions).resolve())
        c.CourseDirectory.release_directory = str(Path(release_directory).resolve())
        c.CourseDirectory.db_url = f"sqlite:///{root}/gradebook.db"
        api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)
        for chapter in course.chapters(solutions):
            result = api.generate_assignment(chapter, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {chapter} failed:\n{result.get('error') or result.get('log')}")
            paths.append(Path(release_directory) / chapter / f"{chapter}.ipynb")
    return paths


def out_of_date(chapters_directory=course.CHAPTERS, solutions=course.SOLUTIONS):
    """Student notebooks under ``chapters_directory`` that differ from a fresh generation (or are missing)."""
    with tempfile.TemporaryDirectory() as fresh:
        stale = []
        for path in generate(fresh, solutions):
            committed = Path(chapters_directory) / path.relative_to(fresh)
            if not committed.is_file() or not filecmp.cmp(path, committed, shallow=False):
                stale.append(str(committed.relative_to(Path(chapters_directory).parent)))
        return stale


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograde.student", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether chapters/ is up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for path in stale:
            print(f"out of date: {path} (run: python -m autograde.student)")
        return 1 if stale else 0
    for path in generate(course.CHAPTERS):
        print(f"wrote {path.relative_to(course.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
