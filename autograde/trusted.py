"""Grade one submission: run its code in the sandbox, judge the answers out here.

For every exercise, a fresh sandboxed process runs the prelude and that
exercise's answer cell, then calls the function on inputs drawn from a seed
made here (``secrets``), which the student's code never sees. The outputs come
back as plain data and are judged by ``nnopt.exercises.evaluate`` in this
process, where the expected values live.

Separately, the notebook's own test cells are run once, in another sandboxed
process, the way nbgrader would run them. Where they pass but the trusted
verdict fails (or the reverse), the exercise is marked "tampering suspected".
The score is always the trusted verdict's.
"""

import dataclasses
import secrets
import time

import numpy as np

from nnopt.exercises import evaluate, exercises_of, wire
from nnopt.exercises.core import UNREADABLE

from . import course
from .sandbox import Limits


def _cells(source_notebook, answers, keep):
    """The cells to run, in notebook order: ``keep(cell)`` decides; answers replace answer cells."""
    cells = []
    for index, cell in enumerate(source_notebook["cells"]):
        if cell.get("cell_type") != "code" or not keep(cell):
            continue
        grade_id = course.grading(cell).get("grade_id", f"cell-{index}")
        if course.is_answer(cell):
            cells.append({"kind": "answer", "id": grade_id, "source": answers.get(grade_id, "")})
        elif course.is_test(cell):
            cells.append({"kind": "test", "id": grade_id, "source": course.text(cell)})
        else:
            cells.append({"kind": "prelude", "id": grade_id, "source": course.text(cell)})
    return cells


def _answer_program(source_notebook, answers, names):
    def keep(cell):
        return "prelude" in course.tags(cell) or (
            course.is_answer(cell) and course.grading(cell).get("grade_id") in names
        )

    return _cells(source_notebook, answers, keep)


def _notebook_program(source_notebook, answers):
    def keep(cell):
        return bool({"prelude", "test-prelude"} & set(course.tags(cell))) or course.is_answer(cell) or course.is_test(cell)

    return _cells(source_notebook, answers, keep)


def _cell_errors(events):
    return [
        f"its cell {event['id']!r} raised {event['error']['type']}: {event['error']['message']}"
        for event in events
        if event.get("event") == "cell" and not event.get("ok") and isinstance(event.get("error"), dict)
    ]


def _judge(exercise, calls, outcome):
    """Turn a job's outcome into ``(passed, reason, details)``."""
    events = outcome.events
    errors = _cell_errors(events)
    if any(e.get("event") == "missing" for e in events):
        reason = f"{exercise.name} is not defined after running the answer cell"
        return False, reason + (f" ({errors[0]})" if errors else ""), errors
    results = {}
    for event in events:
        if event.get("event") == "result":
            number = event.get("number")
            if number in results or not isinstance(number, int) or not 0 <= number < len(calls):
                return False, "the graded process sent an impossible report (a case twice or out of range)", []
            results[number] = event.get("result")
    if not outcome.finished:
        where = f" during case {len(results) + 1} of {len(calls)}" if len(results) < len(calls) else ""
        reason = f"the graded code did not finish{where}: {outcome.ending}"
        return False, reason, errors
    if len(results) != len(calls):
        return False, f"the graded process reported {len(results)} of {len(calls)} cases", errors
    try:
        verdict = evaluate(exercise, calls, [results[i] for i in range(len(calls))])
    except (*UNREADABLE, AttributeError) as error:
        return False, f"the graded process sent a malformed result ({type(error).__name__})", []
    return verdict.passed, verdict.reason, verdict.details + errors


MAX_REASON_CHARS = 1000
MAX_DETAIL_LINES = 40


def _bounded(text):
    """A reason or detail line no longer than MAX_REASON_CHARS (a forged report can send megabytes)."""
    text = str(text)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _nnopt_hint(reason):
    if "No module named 'nnopt'" in reason:
        return reason + ". Graded code may use NumPy and the standard library, not the nnopt reference."
    return reason


def _grade_exercise(entry, exercise, submission, source_notebook, sandbox, limits, slot):
    """Run one exercise's answer in a fresh sandboxed process on secret inputs; judge it here."""
    calls = exercise.cases(np.random.default_rng(secrets.randbits(63)))
    request = {
        "mode": "call",
        "cells": _answer_program(source_notebook, submission.answers, {exercise.name, *exercise.depends_on}),
        "function": exercise.name,
        "argument_names": list(exercise.argument_names),
        "calls": [
            {"args": [wire.encode(a) for a in call.args], "kwargs": {k: wire.encode(v) for k, v in call.kwargs.items()}}
            for call in calls
        ],
    }
    outcome = sandbox.run(request, limits, slot)
    passed, reason, details = _judge(exercise, calls, outcome)
    entry.update(passed=passed, score=exercise.points if passed else 0, reason=_bounded(_nnopt_hint(reason)),
                 details=[_bounded(d) for d in details[:MAX_DETAIL_LINES]], seconds=round(outcome.seconds, 3))


def _entry(exercise, reason=""):
    """An exercise's verdict before (or without) grading: no points."""
    return {"exercise": exercise.name, "max_score": exercise.points, "score": 0, "passed": False,
            "tampering": False, "reason": reason, "details": [], "seconds": 0.0}


def _verdict(submission, entries, seconds=0.0):
    return {"student": submission.student, "chapter": submission.chapter, "sha256": submission.sha256,
            "notes": submission.notes, "exercises": entries, "seconds": round(seconds, 3)}


def ungraded(submission, reason):
    """The verdict of a submission none of whose code could be graded: every exercise 0, for ``reason``."""
    return _verdict(submission, [_entry(exercise, reason) for exercise in exercises_of(submission.chapter)])


def grade(submission, source_notebook, sandbox, limits=Limits(), slot=0, submission_seconds=120.0):
    """Grade ``submission`` (a :class:`submission.Submission`); return the verdict as plain data."""
    if submission.problem:
        return ungraded(submission, submission.problem)
    started = time.monotonic()

    def budget():
        remaining = submission_seconds - (time.monotonic() - started)
        return dataclasses.replace(limits, wall_seconds=max(0.0, min(limits.wall_seconds, remaining)))

    results = []
    for exercise in exercises_of(submission.chapter):
        entry = _entry(exercise)
        results.append(entry)
        if exercise.name not in submission.answers:
            entry["reason"] = f"the answer cell {exercise.name!r} is missing from the submission"
            continue
        job_limits = budget()
        if job_limits.wall_seconds <= 0:
            entry["reason"] = f"the submission's time limit ({submission_seconds:g} s) ran out before this exercise"
            continue
        try:
            _grade_exercise(entry, exercise, submission, source_notebook, sandbox, job_limits, slot)
        except Exception as error:  # a grader bug costs this exercise's verdict, not the submission's
            entry.update(internal_error=True, reason=_bounded(f"internal grading error: {type(error).__name__}: {error}"))

    if budget().wall_seconds > 0:
        _compare_with_notebook_tests(results, source_notebook, submission, sandbox, budget(), slot)
    return _verdict(submission, results, time.monotonic() - started)


def _compare_with_notebook_tests(results, source_notebook, submission, sandbox, limits, slot):
    """Run the notebook's own test cells (in the sandbox) and flag disagreements with the verdicts."""
    request = {"mode": "notebook", "cells": _notebook_program(source_notebook, submission.answers)}
    outcome = sandbox.run(request, limits, slot, with_nnopt=True)
    in_notebook = {
        course.exercise_of_test(event.get("id")): bool(event.get("ok"))
        for event in outcome.events
        if event.get("event") == "cell" and event.get("kind") == "test"
    }
    for entry in results:
        own = in_notebook.get(entry["exercise"])
        if own is None or own == entry["passed"] or entry["exercise"] not in submission.answers:
            continue
        entry["tampering"] = True
        if own:
            entry["reason"] = f"tampering suspected: the notebook's own tests passed, but the trusted check failed: {entry['reason']}"
        else:
            entry["reason"] = (
                "tampering suspected: the trusted check passed, but the notebook's own tests failed "
                "(something in the notebook changed how its tests run); score from the trusted check"
            )

