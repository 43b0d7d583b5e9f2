# Report a result nested 100 000 lists deep, then "done".
import os
import sys


def gd_step(theta, grad, lr):
    report = int(sys.argv[-1])
    os.write(report, b'{"event": "result", "number": 0, "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    os.write(report, b'{"event": "done"}\n')
    os._exit(0)
