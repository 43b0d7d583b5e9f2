"""Runs inside the sandbox: execute a student's cells, then report as plain data.

Started by ``autograde.sandbox`` as ``python -I harness.py FD`` with the request
(JSON) on stdin. Everything in this process is untrusted once the first student
cell has run, so it only *reports*: one JSON line per event on the pipe ``FD``,
written and flushed as soon as it is known, so that a crash later loses nothing
earlier. The grader decides what the lines mean.

Request: {"mode": "call" | "notebook", "paths": [...], "cells": [{"kind", "source", "id"}],
          "function": name, "argument_names": [...], "calls": [{"args", "kwargs"}],
          "hidden_seeds": {exercise: seed}}

Every cell runs, whatever the cells before it raised (a failing cell costs only
what depends on it); a "start" event before each cell tells the grader which cell
was running if the process is killed.
"""

import json
import os
import sys

REPORT = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
REQUEST = json.load(sys.stdin)
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), *REQUEST.get("paths", [])]

import wire  # noqa: E402  (nnopt/exercises/wire.py, mounted beside this file)


def report(**event):
    REPORT.write(json.dumps(event) + "\n")
    REPORT.flush()


def make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


def run_cell(shell, cell):
    """Run one cell like a notebook kernel would; return whether it raised."""
    result = shell.run_cell(cell["source"], store_history=False, silent=False)
    error = result.error_before_exec or result.error_in_exec
    return error


def main(request):
    sys.stdin.close()
    if request.get("hidden_seeds"):
        os.environ["NNOPT_HIDDEN_SEEDS"] = json.dumps(request["hidden_seeds"])
    shell = make_shell()
    for cell in request["cells"]:
        report(event="start", id=cell["id"])
        error = run_cell(shell, cell)
        event = {"event": "cell", "id": cell["id"], "kind": cell["kind"], "ok": error is None}
        if error is not None:
            event["error"] = wire.describe_error(error)
        report(**event)
    if request["mode"] != "call":
        return
    function = shell.user_ns.get(request["function"])
    if not callable(function):
        report(event="missing", type=type(function).__name__)
        return
    names = request["argument_names"]
    for number, call in enumerate(request["calls"]):
        args = [wire.decode(a) for a in call["args"]]
        kwargs = {k: wire.decode(v) for k, v in call["kwargs"].items()}
        report(event="result", number=number, result=wire.run_call(function, args, kwargs, names))


if __name__ == "__main__":
    main(REQUEST)
    report(event="done")
    REPORT.close()
    os._exit(0)  # skip interpreter teardown: student objects' finalizers do not get to run after "done"
