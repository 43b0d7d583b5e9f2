"""Grade one submission: run its code in the sandbox, judge the answers out here.

For every exercise, a fresh sandboxed process runs the prelude and the student's
code cells in notebook order (answer cells and added cells, as "Run All" would),
then calls the exercise's function on inputs drawn from a seed made here
(``secrets``), which the student's code never sees. The outputs come back as
plain data and are judged by ``nnopt.exercises.evaluate`` in this process, where
the expected values live.

Separately, the notebook's own test cells are run once, in another sandboxed
process, on the same inputs. Where both runs finished and they disagree, the
exercise is marked "tampering suspected". The score is always the trusted verdict's.
"""

import dataclasses
import secrets
import time

import numpy as np

from nnopt.exercises import evaluate, exercises_of, program, wire
from nnopt.exercises.core import UNREADABLE, frames

from . import course
from .sandbox import Limits


def _course_cells(source_notebook, tag):
    return [
        {"kind": tag, "id": course.grading(cell).get("grade_id", f"{tag}-{index}"), "label": f"the course's {tag} cell",
         "source": course.text(cell)}
        for index, cell in enumerate(source_notebook["cells"])
        if cell.get("cell_type") == "code" and tag in course.tags(cell)
    ]


def _program(source_notebook, submission, with_tests=False):
    """What a job runs: the prelude, then the student's cells in notebook order (as Run All would).

    With ``with_tests`` (the notebook's own tests, run only to compare), the test
    prelude comes before the student's cells and the course's test cells after them.
    """
    cells = _course_cells(source_notebook, "prelude")
    if with_tests:
        cells += _course_cells(source_notebook, "test-prelude")
    cells += [{key: cell[key] for key in ("kind", "id", "label", "source")} for cell in submission.cells]
    if with_tests:
        cells += [
            {"kind": "test", "id": course.grading(cell)["grade_id"], "label": "the test cell", "source": course.text(cell)}
            for cell in source_notebook["cells"]
            if course.is_test(cell)
        ]
    return cells


def _cell_errors(events, labels):
    """``(label, error)`` for each of the student's cells that raised, in order."""
    return [
        (labels.get(event.get("id"), "a cell"), event["error"])
        for event in events
        if event.get("event") == "cell" and not event.get("ok") and isinstance(event.get("error"), dict)
    ]


def _describe_cell_error(label, error):
    where = frames(error)
    return f"{label} raised {error.get('type')}: {error.get('message')}" + (f" ({where[-1]})" if where else "")


def _running(events, labels):
    """The label of the cell that started last and never reported its end, if any."""
    started = [event.get("id") for event in events if event.get("event") == "start"]
    ended = [event.get("id") for event in events if event.get("event") == "cell"]
    return labels.get(started[-1], "a cell") if len(started) > len(ended) else None


def _judge(exercise, calls, outcome, labels):
    """Turn a job's outcome into ``(passed, reason, details)``."""
    events = outcome.events
    cell_errors = _cell_errors(events, labels)
    errors = [_describe_cell_error(label, error) for label, error in cell_errors]
    imports_nnopt = any(program.explain(exercise, error) == program.uses_nnopt(exercise.name) for _, error in cell_errors)
    if any(e.get("event") == "missing" for e in events):
        if imports_nnopt:
            return False, program.uses_nnopt(exercise.name), errors
        reason = f"{exercise.name} is not defined after running your cells"
        return False, reason + (f" ({errors[0]})" if errors else ""), errors
    results = {}
    for event in events:
        if event.get("event") == "result":
            number = event.get("number")
            if number in results or not isinstance(number, int) or not 0 <= number < len(calls):
                return False, "the graded process sent an impossible report (a case twice or out of range)", []
            results[number] = event.get("result")
    if not outcome.finished:
        running = _running(events, labels)
        if running:
            where = f" while running {running}"
        else:
            where = f" during case {len(results) + 1} of {len(calls)}" if len(results) < len(calls) else ""
        return False, f"the graded code did not finish{where}: {outcome.ending}", errors
    if len(results) != len(calls):
        return False, f"the graded process reported {len(results)} of {len(calls)} cases", errors
    try:
        verdict = evaluate(exercise, calls, [results[i] for i in range(len(calls))])
    except (*UNREADABLE, AttributeError) as error:
        return False, f"the graded process sent a malformed result ({type(error).__name__})", []
    # a name the failed nnopt import would have bound is missing: blame the import; a wrong
    # answer is the answer's own fault, as the visible check (where nnopt exists) says
    missing_name = any(isinstance(r.get("error"), dict) and r["error"].get("type") == "NameError" for r in results.values())
    if not verdict.passed and imports_nnopt and missing_name:
        return False, program.uses_nnopt(exercise.name), verdict.details + errors
    return verdict.passed, verdict.reason, verdict.details + errors


MAX_REASON_CHARS = 1000
MAX_DETAIL_LINES = 40


def _bounded(text):
    """A reason or detail line no longer than MAX_REASON_CHARS (a forged report can send megabytes)."""
    text = str(text)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def _labels(cells):
    return {cell["id"]: cell["label"] for cell in cells}


def _grade_exercise(entry, exercise, submission, source_notebook, sandbox, limits, slot):
    """Run the student's cells and call one exercise's function, in a fresh sandboxed process on secret
    inputs; judge the answers here."""
    seed = secrets.randbits(63)
    calls = exercise.cases(np.random.default_rng(seed))
    cells = _program(source_notebook, submission)
    request = {
        "mode": "call",
        "cells": cells,
        "function": exercise.name,
        "argument_names": list(exercise.argument_names),
        "calls": [
            {"args": [wire.encode(a) for a in call.args], "kwargs": {k: wire.encode(v) for k, v in call.kwargs.items()}}
            for call in calls
        ],
    }
    outcome = sandbox.run(request, limits, slot)
    passed, reason, details = _judge(exercise, calls, outcome, _labels(cells))
    entry.update(passed=passed, score=exercise.points if passed else 0, reason=_bounded(reason),
                 details=[_bounded(d) for d in details[:MAX_DETAIL_LINES]], seconds=round(outcome.seconds, 3),
                 finished=outcome.finished, seed=seed)


def _entry(exercise, reason=""):
    """An exercise's verdict before (or without) grading: no points."""
    return {"exercise": exercise.name, "max_score": exercise.points, "score": 0, "passed": False,
            "tampering": False, "reason": reason, "details": [], "seconds": 0.0}


def _verdict(submission, entries, seconds=0.0):
    for entry in entries:
        entry["notes"] = submission.notes_for(entry["exercise"])
    return {"student": submission.student, "chapter": submission.chapter, "sha256": submission.sha256,
            "exercises": entries, "seconds": round(seconds, 3)}


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
    """Run the notebook's own test cells (in the sandbox) on the grader's inputs; flag disagreements.

    Both runs see the same code and, through the hidden test's seeds, the same inputs,
    so honest code gets the same verdict from both. Only verdicts of runs that both
    finished are compared: a time limit is not tampering.
    """
    seeds = {entry["exercise"]: entry["seed"] for entry in results if "seed" in entry}
    request = {"mode": "notebook", "cells": _program(source_notebook, submission, with_tests=True), "hidden_seeds": seeds}
    outcome = sandbox.run(request, limits, slot, with_nnopt=True)
    if not outcome.finished:
        return
    in_notebook = {
        course.exercise_of_test(event.get("id")): bool(event.get("ok"))
        for event in outcome.events
        if event.get("event") == "cell" and event.get("kind") == "test"
    }
    for entry in results:
        own = in_notebook.get(entry["exercise"])
        if own is None or own == entry["passed"] or not entry.get("finished"):
            continue
        entry["tampering"] = True
        if own:
            entry["reason"] = f"tampering suspected: the notebook's own tests passed, but the trusted check failed: {entry['reason']}"
        else:
            entry["reason"] = (
                "tampering suspected: the trusted check passed, but the notebook's own tests failed on the same "
                "inputs (something in the notebook changed how its tests run); score from the trusted check"
            )
