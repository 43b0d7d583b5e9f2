"""Accept a folder of LMS downloads (zip archives) through nbgrader's ``zip_collect``.

The archives are copied to ``OUT_DIR/downloaded/<chapter>/archive/``; nbgrader
extracts them (refusing members that would land outside the extraction folder)
and sorts each notebook into ``OUT_DIR/collected/<student_id>/<chapter>/`` by
matching its file name against a pattern, which then is graded like any other
submissions folder.

The default pattern fits downloads that name each file ``<student_id>_<anything>.ipynb``
(Canvas, for one, names them ``<login>_<ids...>_<original name>.ipynb``); pass
``--zip-pattern`` with named groups ``student_id`` and ``file_id`` for another LMS.
"""

import logging
import shutil
from pathlib import Path

from nbgrader.apps import ZipCollectApp
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

DEFAULT_PATTERN = r".*/(?P<student_id>[A-Za-z0-9.@-]+)_(?P<file_id>[^/]*\.ipynb)$"


def has_archives(folder):
    return any(path.suffix == ".zip" for path in Path(folder).iterdir() if path.is_file())


def collect(downloads, out_dir, chapter, pattern=DEFAULT_PATTERN):
    """Extract and sort the archives in ``downloads``; return the folder of collected submissions."""
    if "(?P<student_id>" not in pattern or "(?P<file_id>" not in pattern:
        raise ValueError("the zip pattern needs the named groups (?P<student_id>...) and (?P<file_id>...)")
    out_dir = Path(out_dir).resolve()
    archive = out_dir / "downloaded" / chapter / "archive"
    for stale in (archive, archive.parent / "extracted", out_dir / "collected"):
        shutil.rmtree(stale, ignore_errors=True)
    archive.mkdir(parents=True)
    for path in sorted(Path(downloads).iterdir()):
        if path.is_file() and path.suffix in (".zip", ".ipynb"):
            shutil.copy2(path, archive / path.name)
    c = Config()
    c.CourseDirectory.root = str(out_dir)
    c.CourseDirectory.submitted_directory = "collected"
    c.CourseDirectory.assignment_id = chapter
    c.FileNameCollectorPlugin.named_regexp = pattern
    app = ZipCollectApp(config=c, coursedir=CourseDirectory(config=c))
    app.log.setLevel(logging.WARNING)
    try:
        app.start()
    except Exception as error:  # nbgrader raises on an unsafe archive member, among others
        raise ValueError(f"zip_collect failed: {error}") from error
    collected = out_dir / "collected"
    if not collected.is_dir() or not any(collected.iterdir()):
        raise ValueError(f"no notebook in the archives matched the pattern {pattern!r}")
    for folder in collected.glob(f"*/{chapter}"):
        notebooks = list(folder.glob("*.ipynb"))
        if len(notebooks) == 1:  # the LMS renamed it; give it the chapter's name back
            notebooks[0].rename(folder / f"{chapter}.ipynb")
    return collected
