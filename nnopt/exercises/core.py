"""What an exercise is, and how a function's answers become a verdict.

An :class:`Exercise` is declared once, as data plus code: the function name and
points, a seeded generator of calls, the ``nnopt`` reference, tolerances, extra
rules, and known mistakes. The same declaration drives the visible check in the
notebook, the hidden test, the grader's verdict and the mutant tests.
"""

import copy
import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import program, wire


# What judging a malformed or hostile result can raise (an index far out of range can ask
# NumPy for terabytes): the exercise fails with the error named, the grading goes on.
UNREADABLE = (LookupError, TypeError, ValueError, ArithmeticError, MemoryError)


@dataclass(frozen=True)
class Call:
    """One call of the student's function: positional and keyword arguments, and a label for messages."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known-wrong implementation.

    ``code`` defines the exercise's function the wrong way. When ``diagnosis`` is
    set, a failing answer equal to this implementation's is told that diagnosis.
    ``expect`` is the phrase a verdict on this implementation must contain (by
    default the diagnosis); the mutant tests check it.
    """

    name: str
    code: str
    diagnosis: str = ""
    expect: str = ""

    @property
    def expected_phrase(self):
        return self.expect or self.diagnosis

    def function(self, function_name):
        namespace = {"np": np}
        exec(compile(self.code, f"<mistake {self.name}>", "exec"), namespace)
        return namespace[function_name]


@dataclass(frozen=True)
class Exercise:
    """One graded function. See the module docstring."""

    chapter: str
    name: str
    points: int
    cases: Callable  # (np.random.Generator) -> list[Call]
    reference: Callable  # the nnopt implementation; demos fall back to it
    compare_to_reference: bool = True  # False where many answers are right (then `check` decides)
    check: Callable | None = None  # (Call, output) -> list of problems
    check_all: Callable | None = None  # (calls, outputs) -> list of problems across calls
    mistakes: tuple = ()
    rtol: float = 1e-9
    atol: float = 1e-12

    @property
    def argument_names(self):
        return tuple(inspect.signature(self.reference).parameters)


@dataclass
class Verdict:
    """The outcome of one exercise: passed or not, a one-line reason and further detail lines."""

    passed: bool
    reason: str
    details: list = field(default_factory=list)
    cases: int = 0


def plain(value):
    """A value as it looks after crossing the boundary (so both sides compare alike)."""
    return wire.decode(wire.encode(value))


def _describe(value):
    if isinstance(value, wire.Foreign):
        return f"a {value.type_name}" + (f" ({value.detail})" if value.detail else "")
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({value!r})"


def _tolerance(exercise, dtype):
    resolution = np.finfo(dtype).resolution if np.issubdtype(dtype, np.inexact) else 0.0
    return max(exercise.rtol, 10 * resolution), exercise.atol


def _distinct(expected, got):
    """Both numbers to 6 significant digits, or to as many as it takes to show that they differ."""
    for digits in (6, 10, 17):
        shown = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if shown[0] != shown[1]:
            break
    return shown


def compare(exercise, expected, got, path="the result"):
    """Problems with ``got`` as an answer whose correct value is ``expected`` (strict: type, dtype, shape, value)."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple):
            return [f"{path} should be a tuple of {len(expected)}, got {_describe(got)}"]
        if len(got) != len(expected):
            return [f"{path} should be a tuple of {len(expected)}, got a tuple of {len(got)}"]
        names = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
        problems = []
        for i, (e, g) in enumerate(zip(expected, got)):
            problems += compare(exercise, e, g, f"the {names[i] if i < len(names) else str(i + 1) + 'th'} returned value")
        return problems
    if isinstance(expected, list):
        if not isinstance(got, list):
            return [f"{path} should be a list of {len(expected)}, got {_describe(got)}"]
        if len(got) != len(expected):
            return [f"{path} should be a list of {len(expected)}, got a list of {len(got)}"]
        problems = []
        for i, (e, g) in enumerate(zip(expected, got)):
            problems += compare(exercise, e, g, f"item {i} of {path}")
        return problems
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return [f"{path} should be an array of shape {expected.shape}, got {_describe(got)}"]
        if got.dtype != expected.dtype:
            return [f"{path} has dtype {got.dtype}, expected {expected.dtype}"]
        if got.shape != expected.shape:
            return [f"{path} has shape {got.shape}, expected {expected.shape} (no broadcasting)"]
        if np.isnan(got).any() and not np.isnan(expected).any():
            return [f"{path} contains NaN"]
        rtol, atol = _tolerance(exercise, expected.dtype)
        scale = 1.0 + (np.max(np.abs(expected)) if expected.size and np.all(np.isfinite(expected)) else 0.0)
        close = np.isclose(got, expected, rtol=rtol, atol=atol * scale, equal_nan=True)
        if not close.all():
            index = np.unravel_index(np.argmin(close), close.shape) if close.ndim else ()
            where = f" at index {tuple(int(i) for i in index)}" if index else ""
            shown_expected, shown_got = _distinct(expected[index], got[index])
            return [
                f"{path} is wrong{where}: expected {shown_expected}, got {shown_got} "
                f"({int((~close).sum())} of {close.size} entries differ)"
            ]
        return []
    if isinstance(expected, (float, np.floating)):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (float, np.floating, int, np.integer)):
            return [f"{path} should be a number, got {_describe(got)}"]
        rtol, atol = _tolerance(exercise, np.float64)
        scale = 1 + abs(expected) if np.isfinite(expected) else 1.0
        if not np.isclose(got, expected, rtol=rtol, atol=atol * scale, equal_nan=True):  # nan equals nan, as for arrays
            shown_expected, shown_got = _distinct(expected, float(got))
            return [f"{path} is wrong: expected {shown_expected}, got {shown_got}"]
        return []
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, (bool, np.bool_)):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
            return [f"{path} should be the integer {expected}, got {_describe(got)}"]
        if got != expected:
            return [f"{path} is wrong: expected {expected}, got {int(got)}"]
        return []
    if not isinstance(got, type(expected)) or got != expected:
        return [f"{path} should be {expected!r}, got {_describe(got)}"]
    return []


def _same_argument(before, after):
    if isinstance(before, (list, tuple)):  # e.g. a list of arrays: each must be unchanged
        return (
            isinstance(after, (list, tuple))
            and len(after) == len(before)
            and all(_same_argument(b, a) for b, a in zip(before, after))
        )
    if isinstance(before, np.ndarray):
        return (
            isinstance(after, np.ndarray)
            and after.dtype == before.dtype
            and after.shape == before.shape
            and np.array_equal(after, before, equal_nan=True)
        )
    return True


def frames(error):
    """The student's frames of a reported error, as lines ``in helper, line 3 of its cell: code`` (innermost last)."""
    trace = error.get("trace") if isinstance(error, dict) else None
    lines = []
    for frame in trace if isinstance(trace, list) else []:
        if isinstance(frame, list) and len(frame) == 3 and isinstance(frame[1], int):
            function, line, code = (str(part)[: wire.MAX_MESSAGE] for part in frame)
            lines.append(f"in {function}, line {line} of its cell: {code}")
    return lines[-wire.MAX_FRAMES :]


def raised(exercise, error):
    """The problem a raised exception makes: what was raised, and where in the student's code."""
    if error["type"] == "NotImplementedError":
        trace = error.get("trace")
        innermost = trace[-1] if isinstance(trace, list) and trace else None
        if isinstance(innermost, list) and len(innermost) == 3 and innermost[0] != exercise.name:
            # an answer that calls another exercise (or a helper) that is still unfinished
            return f"{exercise.name} calls {innermost[0]}, which is not implemented yet (it raises NotImplementedError)"
        return f"{exercise.name} is not implemented yet (it raises NotImplementedError)"
    explained = program.explain(exercise, error)
    if explained:
        return explained
    where = frames(error)
    return f"{exercise.name} raised {error['type']}: {error['message']}" + (f" ({where[-1]})" if where else "")


def _call_problems(exercise, call, result):
    """Problems with one call's result; a raised exception is a problem by itself."""
    if result["status"] == "raised":
        error = result["error"]
        chain = frames(error)
        return [raised(exercise, error)] + (["traceback, innermost last:", *chain] if len(chain) > 1 else [])
    names = exercise.argument_names
    problems = []
    args_after = [wire.decode(a) for a in result["args_after"]]
    for name, before, after in zip(names, call.args, args_after):
        if not _same_argument(before, after):
            problems.append(f"{exercise.name} modified its input `{name}` in place; compute a new array instead")
    for key, before in call.kwargs.items():
        if not _same_argument(before, wire.decode(result["kwargs_after"][key])):
            problems.append(f"{exercise.name} modified its input `{key}` in place; compute a new array instead")
    for path, name in result.get("aliased", []):
        problems.append(f"{path} is the input `{name}` itself or a view of it (updated in place?); return a new array")
    output = wire.decode(result["output"])
    if exercise.compare_to_reference:
        expected = plain(exercise.reference(*copy.deepcopy(call.args), **copy.deepcopy(call.kwargs)))
        problems += compare(exercise, expected, output)
    if exercise.check is not None:
        problems += exercise.check(call, output)
    return problems


def diagnose(exercise, call, output):
    """Name the known mistake whose (wrong) answer equals ``output`` on this call, if any."""
    expected = plain(exercise.reference(*copy.deepcopy(call.args), **copy.deepcopy(call.kwargs)))
    for mistake in exercise.mistakes:
        if not mistake.diagnosis:
            continue
        try:
            wrong = plain(mistake.function(exercise.name)(*copy.deepcopy(call.args), **copy.deepcopy(call.kwargs)))
        except Exception:
            continue
        if compare(exercise, expected, wrong) and not compare(exercise, wrong, output):
            return mistake.diagnosis
    return ""


def evaluate(exercise, calls, results):
    """Judge the results of ``run_call`` (plain data, one per call) against the exercise."""
    if len(results) != len(calls):
        return Verdict(False, f"{exercise.name} returned {len(results)} results for {len(calls)} calls")
    outputs = []
    for number, (call, result) in enumerate(zip(calls, results), start=1):
        try:
            problems = _call_problems(exercise, call, result)
        except UNREADABLE as error:
            problems = [f"the result could not be read ({type(error).__name__}: {error})"]
        if problems:
            where = f"on case {number} of {len(calls)}" + (f" ({call.label})" if call.label else "")
            details = [f"{exercise.name} {where}:"] + [f"  - {p}" for p in problems]
            try:
                hint = diagnose(exercise, call, wire.decode(result["output"])) if result["status"] == "ok" else ""
            except UNREADABLE:
                hint = ""
            reason = problems[0] + (f". Likely cause: {hint}" if hint else "")
            if hint:
                details.append(f"  Likely cause: {hint}")
            return Verdict(False, reason, details, number)
        outputs.append(wire.decode(result["output"]))
    if exercise.check_all is not None:
        try:
            problems = exercise.check_all(calls, outputs)
        except UNREADABLE as error:
            problems = [f"the results could not be read ({type(error).__name__}: {error})"]
        if problems:
            return Verdict(False, problems[0], [f"  - {p}" for p in problems], len(calls))
    return Verdict(True, f"{exercise.name} passed all {len(calls)} cases", [], len(calls))


def run_locally(exercise, function, calls):
    """Call ``function`` in this process on every call, the way the sandbox harness does."""
    names = exercise.argument_names
    return [
        wire.run_call(function, copy.deepcopy(call.args), copy.deepcopy(call.kwargs), names)
        for call in calls
    ]
