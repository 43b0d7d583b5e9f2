"""Read a submitted notebook defensively and keep only what the student may change.

A submission contributes the *student's own code cells*, in notebook order: its
answer cells, and the code cells the student added. That is what the grader runs
after the course's prelude, as "Run All" would, so a graded function may call
another exercise's function or a helper, and the last definition wins. The
course's own cells (tests, preludes, demos), the kernelspec and everything else
always come from the course: a course cell is recognised by its cell id or by its
unchanged source, and is never run from the submission. Whatever is wrong with the
file (too large, not JSON, another chapter's notebook, a symbolic link) becomes a
plain-language note or problem, never an exception that stops the run. A note
names the exercise it concerns (or none, for the whole submission).
"""

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from nbformat.v4 import new_code_cell

from . import course

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_CELL_CHARS = 200_000
MAX_STUDENT_CELLS = 200
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class Submission:
    """What one student submitted for one chapter, reduced to plain answer sources."""

    student: str
    chapter: str
    path: Path | None = None
    sha256: str = ""
    cells: list = field(default_factory=list)  # the student's code cells in order: {kind, id, label, source, after}
    notes: list = field(default_factory=list)  # worth telling, grading goes on: {"text", "exercise" or None}
    problem: str = ""  # nothing can be graded; every exercise gets 0 with this reason

    @property
    def answers(self):
        """grade_id -> the source of the last answer cell with that id (what a Run All defines last)."""
        return {cell["id"]: cell["source"] for cell in self.cells if cell["kind"] == "answer"}

    def note(self, text, exercise=None):
        self.notes.append({"text": text, "exercise": exercise})

    def notes_for(self, exercise):
        """The notes that concern ``exercise``: its own and the submission-wide ones."""
        return [note["text"] for note in self.notes if note["exercise"] in (None, exercise)]


def answer_ids(source_notebook):
    return [course.grading(cell)["grade_id"] for cell in source_notebook["cells"] if course.is_answer(cell)]


def _course_cells(source_notebook):
    """Ids and sources by which the course's own (non-answer) code cells are recognised."""
    ids, sources = {course.SETUP_CELL_ID}, set()
    for cell in source_notebook["cells"]:
        if course.is_answer(cell):
            continue
        if isinstance(cell.get("id"), str):
            ids.add(cell["id"])
        if cell.get("cell_type") == "code":
            text = course.text(cell)
            sources.update({text.strip(), course.visible_part(text)})
    return ids, sources


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
        submission.note(f"graded {path.name} (the expected name is {chapter}.ipynb)")
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
        submission.note(f"the notebook's kernel language was changed to {language!r}; it was graded as Python")

    expected = answer_ids(sources[chapter])
    _student_cells(submission, cells, sources[chapter], expected)
    if not any(cell["kind"] == "answer" for cell in submission.cells):
        other = _which_chapter(cells, {k: v for k, v in sources.items() if k != chapter})
        if other or not submission.cells:
            submission.cells = []
            submission.problem = (
                f"this is the notebook of chapter {other}, submitted as {chapter}"
                if other
                else f"{path.name} has none of this chapter's answer cells ({', '.join(expected)})"
            )
            return submission
    _note_test_edits(submission, cells, sources[chapter])
    return submission


def _student_cells(submission, cells, source_notebook, expected):
    """Keep the student's code cells (answer cells and added cells), in order, with notes on oddities."""
    course_ids, course_sources = _course_cells(source_notebook)
    seen, added, previous = {}, 0, None
    for cell in cells:
        grade_id = course.grading(cell).get("grade_id")
        source = course.text(cell)
        if course.is_answer(cell) and grade_id in expected:
            kind, label = "answer", f"answer cell `{grade_id}`"
            seen[grade_id] = seen.get(grade_id, 0) + 1
        elif (
            cell.get("cell_type") != "code"
            or course.is_test(cell)
            or (isinstance(cell.get("id"), str) and cell["id"] in course_ids)
            or source.strip() in course_sources
        ):
            previous = cell.get("id") if isinstance(cell.get("id"), str) else previous
            continue
        else:
            added += 1
            first = next((line.strip() for line in source.splitlines() if line.strip()), "")
            kind, grade_id = "added", f"added-{added}"
            label = f"your added cell {added} (`{first[:40]}`)"
        if len(submission.cells) == MAX_STUDENT_CELLS:
            submission.note(f"only the first {MAX_STUDENT_CELLS} of your code cells were run")
            break
        if len(source) > MAX_CELL_CHARS:
            source = f"raise ValueError('this cell has {len(source)} characters; the limit is {MAX_CELL_CHARS}')"
        submission.cells.append({"kind": kind, "id": grade_id, "label": label, "source": source, "after": previous})
        previous = cell.get("id") if isinstance(cell.get("id"), str) else previous
    for grade_id in expected:
        if seen.get(grade_id, 0) > 1:
            submission.note(f"the answer cell `{grade_id}` appears {seen[grade_id]} times; all copies ran in notebook "
                            "order, so the last definition was graded (as Run All does)", grade_id)
        elif grade_id not in seen and submission.cells:
            submission.note(f"the answer cell `{grade_id}` was deleted; your other cells ran without it", grade_id)


def _note_test_edits(submission, cells, source_notebook):
    original = {course.grading(c)["grade_id"]: course.text(c) for c in source_notebook["cells"] if course.is_test(c)}
    seen = {course.grading(c).get("grade_id"): course.text(c) for c in cells if course.is_test(c)}
    for grade_id in original:
        exercise = course.exercise_of_test(grade_id)
        if grade_id not in seen:
            submission.note(f"the test cell `{grade_id}` was deleted; the course's test was run anyway", exercise)
        elif course.visible_part(seen[grade_id]) != course.visible_part(original[grade_id]):
            submission.note(f"the test cell `{grade_id}` was edited; the course's version was run", exercise)


def rebuild(release_notebook, submission):
    """The student edition with the student's cells in it: what nbgrader records and shows as feedback.

    Answer cells get the student's (last) answers; the cells the student added are
    put back after the course cell they followed.
    """
    notebook = copy.deepcopy(release_notebook)
    answers = submission.answers
    for cell in notebook["cells"]:
        grade_id = course.grading(cell).get("grade_id")
        if course.is_answer(cell) and grade_id in answers:
            cell["source"] = answers[grade_id]
    ids = [cell.get("id") for cell in notebook["cells"]]
    for number, added in enumerate((c for c in submission.cells if c["kind"] == "added"), start=1):
        position = ids.index(added["after"]) + 1 if added["after"] in ids else len(ids)
        while position < len(ids) and str(ids[position]).startswith("student-added-"):
            position += 1
        identifier = f"student-added-{number}"
        notebook["cells"].insert(position, new_code_cell(added["source"], id=identifier))
        ids.insert(position, identifier)
    return notebook
