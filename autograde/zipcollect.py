"""Accept a folder of LMS downloads (zip archives, or loose notebooks) for one chapter.

Every notebook in the archives is sorted into
``OUT_DIR/collected/<student_id>/<chapter>/<chapter>.ipynb`` by matching its path
(``archive name/member path``) against a pattern with the named groups
``student_id`` and ``file_id``; that folder is then graded like any other.

The default pattern fits downloads that name each file
``<student_id>_<number>_<...>.ipynb``, optionally with ``LATE_`` before the number
(Canvas names them ``<login>_<user id>_<submission id>_<original name>``). The
student id may contain underscores (``o_brien``): it ends before the first
``_<digits>_``. Pass ``--zip-pattern`` for another LMS.

Nothing here stops the whole run for one bad file: an archive with a member that
would land outside the folder (or a link, or one too large) is skipped, and so are
files that are not notebooks or do not match the pattern; each becomes a CSV row
with its reason. Two files that map to the same student are an error, because
grading either one would silently drop the other.
"""

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from .submission import MAX_NOTEBOOK_BYTES, STUDENT_ID

DEFAULT_PATTERN = r"^(?:.*/)?(?P<student_id>[A-Za-z0-9][A-Za-z0-9_.@-]*?)_(?:LATE_)?\d+_(?P<file_id>.*\.ipynb)$"
JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")


def has_archives(folder):
    return any(path.suffix == ".zip" for path in Path(folder).iterdir() if path.is_file())


def _unsafe_member(member):
    """Why ``member`` must not be extracted, or None."""
    path = PurePosixPath(member.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        return f"its member {member.filename!r} would be extracted outside the folder"
    if stat.S_ISLNK(member.external_attr >> 16):
        return f"its member {member.filename!r} is a symbolic link"
    if member.file_size > MAX_NOTEBOOK_BYTES:
        return f"its member {member.filename!r} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
    return None


def _files(downloads):
    """``(shown name, read bytes, problem)`` for each file of every archive, and for loose notebooks."""
    for path in sorted(Path(downloads).iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        if path.suffix == ".ipynb":
            yield path.name, path.read_bytes, None
        elif path.suffix == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    members = [m for m in archive.infolist() if not m.is_dir()]
                    unsafe = next((reason for reason in map(_unsafe_member, members) if reason), None)
                    if unsafe:
                        yield path.name, None, f"archive {path.name} was skipped: {unsafe}"
                        continue
                    for member in members:
                        yield f"{path.name}/{member.filename}", (lambda m=member: _read(path, m)), None
            except zipfile.BadZipFile:
                yield path.name, None, f"{path.name} is not a valid zip archive; it was skipped"


def _read(path, member):
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)


def collect(downloads, out_dir, chapter, pattern=DEFAULT_PATTERN):
    """Sort the notebooks in ``downloads`` by student; return (collected folder, problem rows for the CSV)."""
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"the zip pattern is not a regular expression: {error}") from error
    if "student_id" not in regex.groupindex or "file_id" not in regex.groupindex:
        raise ValueError("the zip pattern needs the named groups (?P<student_id>...) and (?P<file_id>...)")
    collected = Path(out_dir) / "collected"
    shutil.rmtree(collected, ignore_errors=True)
    collected.mkdir(parents=True)
    problems, owners = [], {}
    for name, read, problem in _files(downloads):
        if problem:
            problems.append(["", chapter, "", 0, 0, problem])
            continue
        if any(part in name for part in JUNK):
            continue
        match = regex.match(name)
        student = match["student_id"] if match else ""
        if not name.endswith(".ipynb"):
            problems.append([student if STUDENT_ID.match(student) else "", chapter, "", 0, 0,
                             f"{name} is not a notebook (.ipynb); it was not graded"])
            continue
        if not match:
            problems.append(["", chapter, "", 0, 0, f"{name} does not match the file-name pattern {pattern!r}; "
                             "it was not graded (pass --zip-pattern for this LMS)"])
            continue
        if not STUDENT_ID.match(student):
            problems.append(["", chapter, "", 0, 0, f"{name}: {student!r} is not a valid student id"])
            continue
        if student in owners:
            raise ValueError(f"two files map to student {student!r}: {owners[student]} and {name}; remove one, "
                             "or pass a --zip-pattern that tells them apart")
        owners[student] = name
        target = collected / student / chapter
        target.mkdir(parents=True)
        (target / f"{chapter}.ipynb").write_bytes(read())
    if not owners and not problems:
        raise ValueError(f"no notebook found in {downloads}")
    return collected, problems
