"""nbgrader stays the instructor's interface: it records the trusted verdicts.

The grading run is an ordinary nbgrader course directory (``OUT_DIR``) with a
gradebook, ``submitted/``, ``autograded/`` and ``feedback/``. The one change is
in ``nbgrader autograde``: its ``Execute`` step, which would run the student's
notebook with the instructor's rights, is replaced by :class:`TrustedExecute`,
which writes each exercise's trusted verdict into the output of its test cell.
nbgrader then scores the cells as usual (an error output is 0 points), so the
gradebook, formgrader, ``nbgrader export`` and the feedback HTML all show the
trusted verdict.
"""

import json
import re
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


def verdict_path(out_dir, student, chapter):
    return Path(out_dir) / "verdicts" / student / f"{chapter}.json"


def _outputs(entry, notes):
    lines = [f"Note: {clean(note)}" for note in notes]
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

    verdict_root = Unicode("", help="the grading run's directory (verdicts/<student>/<chapter>.json)").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        chapter = resources["nbgrader"]["assignment"]
        verdict = json.loads(verdict_path(self.verdict_root, student, chapter).read_text(encoding="utf-8"))
        entries = {entry["exercise"]: entry for entry in verdict["exercises"]}
        notes = verdict["notes"]
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            entry = entries.get(course.exercise_of_test(course.grading(cell).get("grade_id")))
            if course.is_test(cell) and entry is not None:
                cell.outputs = _outputs(entry, notes)
                notes = []  # submission-wide notes are shown once, on the first test cell
        return nb, resources


def config(out_dir, solutions=course.SOLUTIONS):
    """nbgrader configuration of a grading run rooted at ``out_dir``."""
    c = Config()
    c.CourseDirectory.root = str(Path(out_dir).resolve())
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = str(Path(solutions).resolve())
    c.CourseDirectory.db_url = f"sqlite:///{Path(out_dir).resolve() / 'gradebook.db'}"
    c.Autograde.autograde_preprocessors = [
        TrustedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.TrustedExecute.verdict_root = str(Path(out_dir).resolve())
    return c


def _config_file(c):
    """An ``nbgrader_config.py`` for the run directory, so ``nbgrader formgrader`` and ``export`` work there."""
    directory = c.CourseDirectory
    return (
        "# Written by `python -m autograde`: this grading run is an nbgrader course directory.\n"
        "c = get_config()  # noqa\n"
        f"c.CourseDirectory.root = {directory.root!r}\n"
        f"c.CourseDirectory.course_id = {directory.course_id!r}\n"
        f"c.CourseDirectory.source_directory = {directory.source_directory!r}\n"
        f"c.CourseDirectory.db_url = {directory.db_url!r}\n"
    )


class Gradebook:
    """The run's nbgrader course: prepare chapters, record verdicts, write feedback."""

    def __init__(self, out_dir, solutions=course.SOLUTIONS):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        c = config(out_dir, solutions)
        (self.out_dir / "nbgrader_config.py").write_text(_config_file(c), encoding="utf-8")
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)

    def _check(self, result, what):
        if not result["success"]:
            message = (result.get("error") or result.get("log") or "").strip().splitlines()
            raise RuntimeError(f"nbgrader {what} failed: {message[-1] if message else 'no message'}")

    def prepare(self, chapter):
        """Register the chapter in the gradebook and return its student edition (the release notebook)."""
        self._check(self.api.generate_assignment(chapter, force=True, create=True), f"generate_assignment {chapter}")
        release = self.out_dir / "release" / chapter / f"{chapter}.ipynb"
        return json.loads(release.read_text(encoding="utf-8"))

    def record(self, student, chapter, notebook):
        """Autograde ``notebook`` (the rebuilt submission) with the verdicts, and write the feedback."""
        folder = self.out_dir / "submitted" / student / chapter
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{chapter}.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        self._check(self.api.autograde(chapter, student, force=True, create=True), f"autograde {student}/{chapter}")
        self._check(self.api.generate_feedback(chapter, student, force=True), f"generate_feedback {student}/{chapter}")
