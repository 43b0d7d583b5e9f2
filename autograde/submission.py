"""Read a submitted notebook defensively and keep only what the student may change.

A submission contributes the *sources of its answer cells*, nothing else: test
cells, preludes, kernelspec and cell order always come from the course. Whatever
is wrong with the file (too large, not JSON, another chapter's notebook, answer
cells deleted or duplicated, a symbolic link) becomes a plain-language note or problem, never an
exception that stops the run.
"""

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import course

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ANSWER_CHARS = 200_000
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class Submission:
    """What one student submitted for one chapter, reduced to plain answer sources."""

    student: str
    chapter: str
    path: Path | None = None
    sha256: str = ""
    answers: dict = field(default_factory=dict)  # grade_id -> source
    notes: list = field(default_factory=list)  # worth telling, grading goes on
    problem: str = ""  # nothing can be graded; every exercise gets 0 with this reason


def answer_ids(source_notebook):
    return [course.grading(cell)["grade_id"] for cell in source_notebook["cells"] if course.is_answer(cell)]


def _pick_notebook(folder, chapter):
    # Links are not followed: one could point at another student's notebook or the instructor's files.
    for path in (folder.parent, folder):
        if path.is_symlink():
            return None, f"{path.name} is a symbolic link; submit the folder itself, not a link"
    if not folder.is_dir():
        return None, f"no folder {folder.name}/ was submitted for this chapter"
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    expected = folder / f"{chapter}.ipynb"
    if expected in notebooks:
        return expected, ""
    if len(notebooks) == 1:
        return notebooks[0], ""
    if not notebooks:
        return None, f"no notebook (.ipynb) in the submitted folder {folder.name}/"
    names = ", ".join(p.name for p in notebooks[:5])
    return None, f"several notebooks ({names}) and none named {chapter}.ipynb"


def _cells(data):
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None
    cells = [cell for cell in data["cells"] if isinstance(cell, dict)]
    for cell in cells:
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            cell["source"] = ""
    return cells


def _language(data):
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    for key in ("kernelspec", "language_info"):
        entry = metadata.get(key)
        if isinstance(entry, dict):
            name = entry.get("language") or entry.get("name")
            if isinstance(name, str) and name.lower() not in ("python", "python3"):
                return name
    return None


def _which_chapter(cells, sources):
    """The chapter whose answer cells this notebook has, if any."""
    found = {course.grading(cell).get("grade_id") for cell in cells if course.is_answer(cell)}
    for chapter, notebook in sources.items():
        if found & set(answer_ids(notebook)):
            return chapter
    return None


def read(student, chapter, folder, sources):
    """Read ``folder``/<notebook>.ipynb as ``student``'s answer to ``chapter``.

    ``sources`` maps every chapter id to its source notebook (to recognise a
    notebook submitted under the wrong chapter).
    """
    submission = Submission(student, chapter)
    path, problem = _pick_notebook(Path(folder), chapter)
    if path is None:
        submission.problem = problem
        return submission
    if path.is_symlink():
        submission.problem = f"{path.name} is a symbolic link; submit the notebook file itself, not a link"
        return submission
    submission.path = path
    if path.name != f"{chapter}.ipynb":
        submission.notes.append(f"graded {path.name} (the expected name is {chapter}.ipynb)")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        submission.problem = f"{path.name} is {size / 2**20:.0f} MB; the limit is {MAX_NOTEBOOK_BYTES // 2**20} MB"
        return submission
    raw = path.read_bytes()
    submission.sha256 = hashlib.sha256(raw).hexdigest()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        submission.problem = f"{path.name} is not UTF-8 text, so it is not a notebook"
        return submission
    except (ValueError, RecursionError) as error:
        submission.problem = f"{path.name} is not valid notebook JSON ({str(error)[:120]})"
        return submission
    cells = _cells(data)
    if cells is None:
        submission.problem = f"{path.name} is JSON but not a notebook (it has no list of cells)"
        return submission
    language = _language(data)
    if language:
        submission.notes.append(f"the notebook's kernel language was changed to {language!r}; it was graded as Python")

    expected = answer_ids(sources[chapter])
    for cell in cells:
        grade_id = course.grading(cell).get("grade_id")
        if not course.is_answer(cell) or grade_id not in expected:
            continue
        if grade_id in submission.answers:
            submission.notes.append(f"answer cell {grade_id!r} appears more than once; the first one was graded")
            continue
        source = course.text(cell)
        if len(source) > MAX_ANSWER_CHARS:
            source = f"raise ValueError('this answer cell has {len(source)} characters; the limit is {MAX_ANSWER_CHARS}')"
        submission.answers[grade_id] = source
    if not submission.answers:
        other = _which_chapter(cells, {k: v for k, v in sources.items() if k != chapter})
        submission.problem = (
            f"this is the notebook of chapter {other}, submitted as {chapter}"
            if other
            else f"{path.name} has none of this chapter's answer cells ({', '.join(expected)})"
        )
        return submission
    _note_test_edits(submission, cells, sources[chapter])
    return submission


def _note_test_edits(submission, cells, source_notebook):
    original = {course.grading(c)["grade_id"]: course.text(c) for c in source_notebook["cells"] if course.is_test(c)}
    seen = {course.grading(c).get("grade_id"): course.text(c) for c in cells if course.is_test(c)}
    missing = [grade_id for grade_id in original if grade_id not in seen]
    if missing:
        submission.notes.append(f"test cells {', '.join(missing)} were deleted; the course's tests were run anyway")
    edited = [g for g, text in seen.items() if g in original and course.visible_part(text) != course.visible_part(original[g])]
    if edited:
        submission.notes.append(f"test cells {', '.join(edited)} were edited; the course's versions were run")


def rebuild(release_notebook, answers):
    """The student edition with the student's answers filled in: what nbgrader grades."""
    notebook = copy.deepcopy(release_notebook)
    for cell in notebook["cells"]:
        grade_id = course.grading(cell).get("grade_id")
        if course.is_answer(cell) and grade_id in answers:
            cell["source"] = answers[grade_id]
    return notebook
