"""nbgrader stays the instructor's interface: it records the trusted verdicts.

The grading run is an ordinary nbgrader course directory (``OUT_DIR``) with a
gradebook, ``submitted/``, ``autograded/`` and ``feedback/``. The one change is
in ``nbgrader autograde``: its ``Execute`` step, which would run the student's
notebook with the instructor's rights, is replaced by :class:`TrustedExecute`,
which writes each exercise's trusted verdict into the output of its test cell.
nbgrader then scores the cells as usual (an error output is 0 points), so the
gradebook, formgrader, ``nbgrader export`` and the feedback HTML all show the
trusted verdict.

The verdicts, like the gradebook, live in the run's database (``autograde.database``):
SQLite in ``OUT_DIR`` by default, or a server that several grading machines share.
With the default, ``OUT_DIR`` is self-contained and can be moved: it holds a copy of
the chapters' sources (``source/``), and its ``nbgrader_config.py`` finds everything
relative to itself; with ``--db URL`` that file names the URL, as it was given.
``nbgrader export`` there writes ``nbgrader_export.csv``, never the grader's
``grades.csv``. Feedback pages load MathJax from ``feedback/_mathjax/`` (copied from
the pinned ``django-static-mathjax`` package), not from a CDN, and their Markdown is
plain (``autograde.markdown``).
"""

import json
import os
import re
import shutil
import warnings
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.v4 import new_output
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from sqlalchemy.exc import SAWarning
from traitlets import Unicode
from traitlets.config import Config

from . import course
from .database import Database
from .markdown import plain_notebook

# nbgrader 0.9.6 with SQLAlchemy 2 warns about its own session handling on every autograde; harmless.
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")

COURSE_ID = "nnopt"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text):
    """Student-derived text made safe to show: no terminal escapes, control characters or lone surrogates.

    (A lone surrogate, ``"\\ud800"``, is a valid ``str`` that no UTF-8 file can hold.)
    """
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", _ANSI.sub("", text))


def _outputs(entry):
    lines = [f"Note: {clean(note)}" for note in entry.get("notes", [])]
    if entry["passed"]:
        mark = "⚠ " if entry["tampering"] else "✓ "
        text = "\n".join(lines + [mark + clean(entry["reason"])]) + "\n"
        return [new_output("stream", name="stdout", text=text)]
    name = "TamperingSuspected" if entry["tampering"] else "NotPassed"
    return [
        new_output(
            "error",
            ename=name,
            evalue=clean(entry["reason"]),
            traceback=[f"{name}: {clean(entry['reason'])}", *(clean(d) for d in entry["details"]), *lines],
        )
    ]


class TrustedExecute(NbGraderPreprocessor):
    """Put the trusted verdicts into the test cells instead of executing the notebook."""

    db_url = Unicode("", help="the database that holds the trusted verdicts (autograde.database)").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        chapter = resources["nbgrader"]["assignment"]
        with Database(self.db_url) as database:
            verdict = database.stored(student, chapter)["verdict"]
        entries = {entry["exercise"]: entry for entry in verdict["exercises"]}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            entry = entries.get(course.exercise_of_test(course.grading(cell).get("grade_id")))
            if course.is_test(cell) and entry is not None:
                cell.outputs = _outputs(entry)
        return nb, resources


EXPORT_FILE = "nbgrader_export.csv"  # where `nbgrader export` writes in OUT_DIR (grades.csv is the grader's)
MATHJAX_CDN = '<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"> </script>'
MATHJAX_LOADER = """window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
  processEscapes: true, tags: "ams"}};
(function () {
  var script = document.createElement("script");
  script.src = document.currentScript.src.replace(/load\\.js$/, "tex-chtml.js");
  document.head.appendChild(script);
})();
"""


def default_db_url(out_dir):
    """The gradebook when no ``--db`` is given: SQLite in ``out_dir``."""
    return f"sqlite:///{Path(out_dir).resolve() / 'gradebook.db'}"


def config(out_dir, db_url):
    """nbgrader configuration of a grading run rooted at ``out_dir``, with its gradebook at ``db_url``."""
    root = Path(out_dir).resolve()
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = db_url
    c.Autograde.autograde_preprocessors = [
        TrustedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.TrustedExecute.db_url = db_url
    return c


CONFIG_FILE = f"""# Written by `python -m autograde`: this grading run is an nbgrader course directory.
# Paths are relative to this file, so the folder can be moved or copied elsewhere.
import os

c = get_config()  # noqa
here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = {COURSE_ID!r}
{{db_url}}
c.CsvExportPlugin.to = {EXPORT_FILE!r}  # grades.csv belongs to the grader
"""
LOCAL_DB = 'c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "gradebook.db")'
SHARED_DB = "c.CourseDirectory.db_url = {!r}  # from python -m autograde --db (a password only if that URL had one)"


def _copy_mathjax(feedback):
    """MathJax 3 (from the pinned package) and a loader that configures it, under ``feedback/_mathjax``."""
    import mathjax  # the django-static-mathjax package

    target = feedback / "_mathjax"
    if (target / "load.js").is_file():
        return
    origin = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    for part in ("input", "output/chtml", "ui", "a11y", "adaptors"):
        if (origin / part).is_dir():
            shutil.copytree(origin / part, target / part, dirs_exist_ok=True)
    shutil.copy2(origin / "tex-chtml.js", target / "tex-chtml.js")
    (target / "load.js").write_text(MATHJAX_LOADER, encoding="utf-8")


class Gradebook:
    """The run's nbgrader course: prepare chapters, record verdicts, write feedback."""

    def __init__(self, out_dir, database, solutions=course.SOLUTIONS):
        self.out_dir = Path(out_dir)
        self.database = database
        self.solutions = Path(solutions)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        c = config(out_dir, database.url_text)
        local = database.url_text == default_db_url(out_dir)
        mode = 0o600 if database.url.password else 0o644  # a password is there only if the URL given had one
        descriptor = os.open(self.out_dir / "nbgrader_config.py", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(descriptor, mode)
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(CONFIG_FILE.format(db_url=LOCAL_DB if local else SHARED_DB.format(database.url_text)))
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)

    def _check(self, result, what):
        if not result["success"]:
            message = (result.get("error") or result.get("log") or "").strip().splitlines()
            raise RuntimeError(f"nbgrader {what} failed: {message[-1] if message else 'no message'}")

    def copy_source(self, chapter):
        shutil.copytree(self.solutions / chapter, self.out_dir / "source" / chapter, dirs_exist_ok=True)

    def prepare(self, chapter):
        """Copy the chapter's source into the run, register it in the gradebook, and return its student edition
        (the release notebook, with plain Markdown)."""
        self.copy_source(chapter)
        with self.database.gradebook_lock():
            self._check(self.api.generate_assignment(chapter, force=True, create=True), f"generate_assignment {chapter}")
        release = self.out_dir / "release" / chapter / f"{chapter}.ipynb"
        notebook = plain_notebook(json.loads(release.read_text(encoding="utf-8")))
        release.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")
        return notebook

    def _autograded(self, student, chapter):
        return self.out_dir / "autograded" / student / chapter / f"{chapter}.ipynb"

    def record(self, student, chapter, notebook):
        """Autograde ``notebook`` (the rebuilt submission) with the stored verdict, write the feedback, and return
        the autograded notebook (JSON text)."""
        folder = self.out_dir / "submitted" / student / chapter
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{chapter}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        with self.database.gradebook_lock():
            self._check(self.api.autograde(chapter, student, force=True, create=True), f"autograde {student}/{chapter}")
        self.feedback(student, chapter)
        return self._autograded(student, chapter).read_text(encoding="utf-8")

    def restore(self, student, chapter, autograded):
        """Put a recorded submission's autograded notebook (from the database) back into this folder."""
        path = self._autograded(student, chapter)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(autograded, encoding="utf-8")

    def feedback(self, student, chapter):
        """nbgrader's feedback page of a recorded submission (scores and comments from the gradebook), read offline."""
        self._check(self.api.generate_feedback(chapter, student, force=True), f"generate_feedback {student}/{chapter}")
        feedback = self.out_dir / "feedback"
        _copy_mathjax(feedback)
        for page in (feedback / student / chapter).glob("*.html"):
            html = page.read_text(encoding="utf-8")
            depth = len(page.relative_to(feedback).parts) - 1
            local = f'<script src="{"../" * depth}_mathjax/load.js"></script>'
            page.write_text(html.replace(MATHJAX_CDN, local), encoding="utf-8")
