"""What the grader runs of a notebook, and how the visible check foresees it.

The grader runs the prelude (``import numpy as np``) and then the student's own
code cells (answer cells and cells the student added) in notebook order; the
course's other cells (imports of ``nnopt``, demos) are not run, and ``nnopt`` does
not exist where graded code runs. Two things therefore work in a notebook and not
in grading:

* graded code that uses the ``nnopt`` reference package;
* graded code that uses a name which only a course cell defines (``plt``, ``time``,
  ``optim``, a demo's variable).

:func:`grading_problems` finds both in a live kernel, so that ``check`` fails with
the same words the grader will use (:func:`uses_nnopt`, :func:`uses_course_name`).
The course cells of each chapter are known from ``course_cells.json``, which
``python -m autograde.student`` writes from ``solutions/`` (the names they bind,
and a digest of each cell's source to recognise them in the kernel's history).
"""

import ast
import dis
import functools
import hashlib
import inspect
import json
import types
from pathlib import Path

COURSE_CELLS_FILE = Path(__file__).with_name("course_cells.json")
NNOPT_DIRECTORY = str(Path(__file__).resolve().parent.parent)


def uses_nnopt(function_name):
    return (
        f"{function_name} uses the nnopt reference package: graded code may use NumPy and the "
        "standard library only (the grader runs it where nnopt does not exist)"
    )


def uses_course_name(function_name, name):
    return (
        f"{function_name} uses `{name}`, which a cell of the course defines, not one of yours: the grader "
        f"runs only the prelude and your own cells, so define or import `{name}` in your own code"
    )


def cell_digest(source):
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()[:16]


def bound_names(source):
    """Names a cell binds at its top level (assignments, imports, definitions, loop targets)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics, or a broken cell
        return set()
    names, pending = set(), list(tree.body)
    while pending:  # top-level statements and the blocks inside them, not function or class bodies
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return names


def describe_course_cells(sources):
    """The ``course_cells.json`` entry of one chapter, from the sources of its course-only code cells."""
    names = set().union(*(bound_names(source) for source in sources)) if sources else set()
    return {"names": sorted(names), "digests": sorted({cell_digest(source) for source in sources})}


@functools.lru_cache(maxsize=1)
def _course_cells():
    try:
        return json.loads(COURSE_CELLS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def course_names(chapter):
    """Names that the course's own cells of ``chapter`` bind (the grader does not run those cells)."""
    return set(_course_cells().get(chapter, {}).get("names", ()))


def _from_nnopt(value):
    if isinstance(value, types.ModuleType):
        return value.__name__.split(".")[0] == "nnopt"
    code = getattr(value, "__code__", None)
    if code is not None:
        return str(Path(code.co_filename).resolve()).startswith(NNOPT_DIRECTORY)
    module = value.__module__ if isinstance(value, type) else type(value).__module__
    return isinstance(module, str) and module.split(".")[0] == "nnopt"


# Instructions that read (or import) a global name; ``co_names`` also holds attribute names, and
# ``chunk.nbytes`` does not use a course variable ``nbytes``.
_GLOBAL_NAME_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS", "IMPORT_NAME"}


def _code_names(code):
    names = {instruction.argval for instruction in dis.get_instructions(code) if instruction.opname in _GLOBAL_NAME_OPS}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _code_names(constant)
    return names


def _global_uses(function, seen=None):
    """``(name, value or missing)`` for each global name ``function`` reads, following the functions it
    calls that were defined in the notebook."""
    seen = set() if seen is None else seen
    if id(function) in seen:
        return
    seen.add(id(function))
    namespace = function.__globals__
    for name in sorted(_code_names(function.__code__)):
        if name.split(".")[0] == "nnopt":
            yield name, None, True
            continue
        if name not in namespace:
            continue
        value = namespace[name]
        yield name, value, False
        if inspect.isfunction(value) and not _from_nnopt(value):
            yield from _global_uses(value, seen)
    for cell in function.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inspect.isfunction(value) and not _from_nnopt(value):
            yield from _global_uses(value, seen)


def _history():
    """Sources of the cells this kernel ran, oldest first (empty outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    return [source for source in history if isinstance(source, str)]


def _bound_by_course_cell(name, chapter):
    """Whether the latest cell this kernel ran that binds ``name`` is one of the course's cells."""
    digests = set(_course_cells().get(chapter, {}).get("digests", ()))
    for source in reversed(_history()):
        if name in bound_names(source):
            return cell_digest(source) in digests
    return False


def grading_problems(exercise, function):
    """What in ``function`` (as defined in this kernel) cannot work where the grader runs it."""
    if _from_nnopt(function):
        return [uses_nnopt(exercise.name)]
    if not inspect.isfunction(function):
        return []
    course = course_names(exercise.chapter)
    for name, value, imports_nnopt in _global_uses(function):
        if name in course and _bound_by_course_cell(name, exercise.chapter):
            return [uses_course_name(exercise.name, name)]
        if imports_nnopt or _from_nnopt(value):
            return [uses_nnopt(exercise.name)]
    return []


def explain(exercise, error):
    """The grader's words for an error that only grading raises, or None."""
    message = error.get("message", "")
    if error.get("type") == "ModuleNotFoundError" and "'nnopt" in message:
        return uses_nnopt(exercise.name)
    if error.get("type") == "NameError" and message.startswith("name '"):
        name = message.split("'")[1]
        if name in course_names(exercise.chapter):
            return uses_course_name(exercise.name, name)
    return None
