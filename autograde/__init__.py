"""Grading for the course: ``python -m autograde SUBMISSIONS_DIR --out OUT_DIR``.

nbgrader keeps the gradebook, feedback and formgrader; the verdicts come from
``autograde.trusted``, which runs student code only inside ``autograde.sandbox``.
See book/grading.md for the instructor's guide.
"""

import os
import sys

# nbgrader runs the `alembic` command when it creates a gradebook; make sure the
# one installed beside this interpreter is found even if the venv is not activated.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
