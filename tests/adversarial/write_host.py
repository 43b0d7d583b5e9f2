# Write into the gradebook (which holds the run's verdicts), other students' folders, the course and the host's /tmp.
import os
import sqlite3

TARGETS = "$write_paths".split("|")


def gd_step(theta, grad, lr):
    for path in TARGETS:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a") as handle:
                handle.write("$marker")
        except OSError:
            pass
        try:
            sqlite3.connect(path).execute("CREATE TABLE IF NOT EXISTS pwned (marker TEXT)").connection.commit()
        except sqlite3.Error:
            pass
    raise RuntimeError("tried to write outside the sandbox")
