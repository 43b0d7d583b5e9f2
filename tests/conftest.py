"""Shared fixtures. The slow parts (grading runs, the book build) are session-scoped."""

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `autograde` is run from the repository root, like the README says


def require_command(name, package):
    if shutil.which(name) is None:
        pytest.fail(f"`{name}` is missing: install Debian's {package} (see README.md)")
