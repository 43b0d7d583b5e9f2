"""Build submission folders for grading tests: the student edition with chosen answers filled in."""

import copy
import json
from pathlib import Path

from autograde.course import SOLUTION_MARKERS

REPO = Path(__file__).resolve().parent.parent


def _load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def student_edition(chapter):
    return _load(REPO / "chapters" / chapter / f"{chapter}.ipynb")


def solution_answers(chapter):
    """The instructor's answers, as a student would have typed them (no nbgrader markers)."""
    source = _load(REPO / "solutions" / chapter / f"{chapter}.ipynb")
    answers = {}
    for cell in source["cells"]:
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if grading.get("solution"):
            lines = "".join(cell["source"]).splitlines(keepends=True)
            answers[grading["grade_id"]] = "".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)
    return answers


def notebook_with(chapter, answers):
    """The student edition of ``chapter`` with ``answers`` (grade_id -> source) in its answer cells."""
    notebook = copy.deepcopy(student_edition(chapter))
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and grade_id in answers:
            cell["source"] = answers[grade_id]
    return notebook


def write(root, student, chapter, notebook=None, name=None, raw=None):
    """Write one submission file under ``root/student/chapter/``; return its path."""
    folder = Path(root) / student / chapter
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{chapter}.ipynb")
    if raw is not None:
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    else:
        path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path
