# Read what the grader must keep from students: hidden tests and the instructor's files, other
# students' work, the grading run's folder, the grader's environment. Report any canary found.
import glob
import os
import re
import sys

SECRET_FILES = "$secret_files".split("|")
CANARY = re.compile(r"canary-\w+-[0-9a-f]{32}")


def _read(path):
    if os.path.isdir(path):
        return "\n".join(os.listdir(path))
    with open(path, "rb") as handle:
        return handle.read().decode("latin-1")


def _texts():
    for path in SECRET_FILES + glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
        for candidate in (path, os.path.dirname(path)):
            try:
                yield candidate, _read(candidate)
            except OSError:
                pass
    yield "os.environ", repr(dict(os.environ))
    frame = sys._getframe()
    while frame is not None:  # the harness's request: in the notebook run it holds the hidden tests
        yield "frame", repr(frame.f_locals)
        frame = frame.f_back


def gd_step(theta, grad, lr):
    found = [f"{where}: {match.group()}" for where, text in _texts() for match in CANARY.finditer(text)]
    raise RuntimeError(f"found {found}" if found else "found nothing to leak")
