"""Where the course lives, and how a chapter notebook marks its graded parts.

A source notebook (``solutions/NN_name/NN_name.ipynb``) marks, with nbgrader's
cell metadata and a few tags:

* an answer cell per exercise: nbgrader ``solution`` cell whose ``grade_id`` is the
  exercise's function name (``gd_step``);
* a graded test cell per exercise: nbgrader ``grade`` cell with ``points`` whose
  ``grade_id`` is ``<name>_tests``; it calls ``check(<name>)`` and, hidden,
  ``hidden_test(<name>)``;
* ``prelude`` cells (tag): imports that graded code may rely on (no ``nnopt``);
  they run before the answer cells wherever those run;
* ``test-prelude`` cells (tag): what the test cells need (``nnopt.exercises``).

The student edition also starts with a setup cell (``SETUP_CELL_ID``) that
``autograde.student`` writes: it installs ``nnopt`` from the course repository where
the notebook is opened without it (Colab, Binder).
"""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
CHAPTERS = REPO / "chapters"
SETUP_CELL_ID = "course-setup"
_GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$")
TESTS_SUFFIX = "_tests"
# nbgrader's markers, as the instructor notebooks use them
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS_BEGIN, HIDDEN_TESTS_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def chapters(solutions=SOLUTIONS):
    """Chapter ids that have a source notebook, in order."""
    return sorted(path.name for path in Path(solutions).iterdir() if (path / f"{path.name}.ipynb").is_file())


def source_path(chapter, solutions=SOLUTIONS):
    return Path(solutions) / chapter / f"{chapter}.ipynb"


def load_source(chapter, solutions=SOLUTIONS):
    return json.loads(source_path(chapter, solutions).read_text(encoding="utf-8"))


def text(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grading(cell):
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return nbgrader if isinstance(nbgrader, dict) else {}


def tags(cell):
    metadata = cell.get("metadata")
    found = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return found if isinstance(found, list) else []


def is_answer(cell):
    return cell.get("cell_type") == "code" and bool(grading(cell).get("solution"))


def is_test(cell):
    marks = grading(cell)
    return cell.get("cell_type") == "code" and bool(marks.get("grade")) and not marks.get("solution")


def exercise_of_test(grade_id):
    """The exercise a test cell's ``grade_id`` grades (``gd_step_tests`` -> ``gd_step``), or None."""
    return grade_id[: -len(TESTS_SUFFIX)] if isinstance(grade_id, str) and grade_id.endswith(TESTS_SUFFIX) else None


def visible_part(test_source):
    """A test cell's source without its hidden part (what students see)."""
    return test_source.split(HIDDEN_TESTS_BEGIN)[0].strip()


def repository():
    """``(url, branch)`` of the course repository from ``_config.yml`` (the url is "" when not set)."""
    import yaml

    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8")) or {}
    section = config.get("repository") or {}
    return str(section.get("url") or ""), str(section.get("branch") or "main")


def launch_links(url, branch, chapter):
    """Colab and Binder addresses that open a chapter's student edition from a GitHub repository ({} otherwise)."""
    match = _GITHUB.match(url or "")
    if not match:
        return {}
    owner, name, path = match["owner"], match["name"], f"chapters/{chapter}/{chapter}.ipynb"
    return {
        "colab": f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{path}",
        "binder": f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}?labpath={path.replace('/', '%2F')}",
    }


def setup_cell_source(url):
    """The student edition's first code cell: install ``nnopt`` from ``url`` where it is missing, else nothing."""
    head = (
        "# Setup: this notebook needs the course package nnopt. Where it is installed (the course\n"
        "# repository, ./course lab) this cell does nothing.\n"
        "import importlib.util\n\n"
        'if importlib.util.find_spec("nnopt") is None:\n'
    )
    if not url:
        return head + (
            '    raise ImportError("this notebook needs the course package nnopt: open it from the course "\n'
            '                      "repository with ./course lab (see its README)")\n'
        )
    return head + (
        "    import subprocess\n"
        "    import sys\n\n"
        f'    print("Installing the course package nnopt from {url} (about a minute) ...")\n'
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nnopt[notebooks] @ git+{url}"],\n'
        "                   check=True)\n"
        "    importlib.invalidate_caches()\n"
    )
