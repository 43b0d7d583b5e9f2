"""The exercise registry, and the three helpers a chapter notebook uses.

``check(fn)``        the visible check: fixed inputs, says what is wrong;
``hidden_test(fn)``  the hidden test as the notebook runs it (fresh random inputs);
``or_reference(fn)`` for demos: the student's function, or nnopt's reference
                     (saying so) while the student's raises NotImplementedError.

The grader does not trust these in-notebook runs; it calls the same registry
from outside the student's process (see ``autograde``). Where graded code would
fail only in grading (it uses ``nnopt``, or a name that only a course cell
defines), the check fails first, in the grader's words (``program``).
"""

import functools
import json
import os

import numpy as np

from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08
from .core import Call, Exercise, Mistake, Verdict, evaluate, run_locally
from .program import grading_problems

VISIBLE_SEED = 0
HIDDEN_SEEDS_VARIABLE = "NNOPT_HIDDEN_SEEDS"  # set by the grader's sandbox: the seeds of its own run
CHAPTER_MODULES = (ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08)
EXERCISES = {exercise.name: exercise for module in CHAPTER_MODULES for exercise in module.EXERCISES}


class CheckFailed(AssertionError):
    """A check found the function wrong; the message says how."""


def exercises_of(chapter):
    """The exercises of a chapter, in notebook order."""
    return [exercise for exercise in EXERCISES.values() if exercise.chapter == chapter]


def _exercise_for(function):
    __tracebackhide__ = True
    name = getattr(function, "__name__", None)
    if name not in EXERCISES:
        known = ", ".join(EXERCISES)
        raise TypeError(f"pass one of the exercise functions ({known}), got {function!r}")
    return EXERCISES[name]


def _run(function, seed, what):
    __tracebackhide__ = True
    exercise = _exercise_for(function)
    problems = grading_problems(exercise, function)
    if problems:
        raise CheckFailed(f"{what} failed: {problems[0]}")
    calls = exercise.cases(np.random.default_rng(seed))
    verdict = evaluate(exercise, calls, run_locally(exercise, function, calls))
    if not verdict.passed:
        raise CheckFailed("\n".join([f"{what} failed: {verdict.reason}", *verdict.details]))
    return verdict


def check(function):
    """Run the visible check of an exercise function; print a tick or raise :class:`CheckFailed`."""
    __tracebackhide__ = True
    verdict = _run(function, VISIBLE_SEED, f"check({function.__name__})")
    print(f"✓ {verdict.reason} (the graded test uses other inputs of the same kinds)")


def hidden_test(function):
    """The hidden test as run inside a notebook: fresh random inputs each time.

    (Where the grader runs the notebook's tests, to compare them with its own verdict,
    it sets the seeds it graded with, so that both judge the same inputs.)
    """
    __tracebackhide__ = True
    graders = json.loads(os.environ.get(HIDDEN_SEEDS_VARIABLE, "{}"))
    seed = graders.get(function.__name__, int(np.random.SeedSequence().entropy % 2**63))
    verdict = _run(function, seed, f"hidden test of {function.__name__} (seed {seed})")
    print(f"✓ hidden test: {verdict.reason}")


def or_reference(function):
    """Return a stand-in for ``function`` that falls back to nnopt's reference while it is unfinished."""
    exercise = _exercise_for(function)
    reference = exercise.reference
    using_reference = False

    @functools.wraps(function)
    def call(*args, **kwargs):
        nonlocal using_reference
        if not using_reference:
            try:
                return function(*args, **kwargs)
            except NotImplementedError:
                using_reference = True
                print(
                    f"Note: {exercise.name} is not implemented yet, so this demo uses "
                    f"{reference.__module__}.{reference.__name__} instead."
                )
        return reference(*args, **kwargs)

    return call


__all__ = [
    "Call",
    "CheckFailed",
    "EXERCISES",
    "Exercise",
    "Mistake",
    "Verdict",
    "check",
    "evaluate",
    "exercises_of",
    "hidden_test",
    "or_reference",
]
