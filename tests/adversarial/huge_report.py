# Report, by hand, an error whose type name and message are a megabyte long.
import json
import os
import sys


def _cases():
    frame = sys._getframe()
    while frame is not None and "request" not in frame.f_locals:
        frame = frame.f_back
    return len(frame.f_locals["request"].get("calls", [])) if frame is not None else 0


def gd_step(theta, grad, lr):
    report = int(sys.argv[-1])
    for number in range(_cases()):
        size = 125_000 if number == 0 else 1
        result = {"status": "raised", "error": {"type": "Huge" * size, "message": "huge " * size}}
        os.write(report, (json.dumps({"event": "result", "number": number, "result": result}) + "\n").encode())
    os.write(report, b'{"event": "done"}\n')
    os._exit(0)
