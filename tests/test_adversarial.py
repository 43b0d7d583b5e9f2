"""Adversarial grading: crafted submissions that try to cheat, snoop, escape or break the grader.

Every attacker is graded in one run, mixed with three honest control students (full solution,
one known mistake, blank), which are also graded alone. Each crafted answer is a file in
tests/adversarial/ (``$names`` in it are filled in here). For every attacker: the grader
finishes, the targeted exercise scores 0 with a named reason, the attacker's other exercises keep
full marks where the attack is confined to one exercise, the controls score as when graded
alone, nothing outside the run's folder changes, no process of the run survives, and no canary
planted where students must not read reaches the CSV, the feedback or the grader's output.
"""

import copy
import hashlib
import os
import select
import shutil
import socket
import sqlite3
import string
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

import submissions
from conftest import REPO, require_command
from nnopt.exercises import EXERCISES, exercises_of
from test_grading import read_grades

pytestmark = pytest.mark.xdist_group("grading")  # one worker runs every grading run, one after another: they share the job uids

CHAPTER = "01_gradient_descent"
ATTACKS_DIR = Path(__file__).with_name("adversarial")
WALL_SECONDS = 8  # generous: the suite may share the machine with the book build (pytest -n 2)
MEMORY_MB = 1024  # the memory bomb touches every page it gets: filling 1 GiB takes this machine's VM ~1.5 s
FIRST_SLOT_UID, LAST_SLOT_UID = 64000, 64063
MOMENTUM_MISTAKE = EXERCISES["momentum_step"].mistakes[0]
SIGN_ERROR = EXERCISES["gd_step"].mistakes[0]

# attacker -> targeted exercise -> phrase its CSV reason must contain.
# An attacker is tests/adversarial/<attacker>.py as the answer to the targeted exercise; or, for
# added_cell_*, that file as a cell the student added after a wrong answer to the targeted exercise;
# or (duplicate_cell_ids, symlink_to_solutions) a whole notebook built below.
ATTACKS = [
    # monkeypatching, lying objects, introspection
    ("monkeypatch_numpy", "gd_step", "tampering suspected"),
    ("monkeypatch_nnopt", "gd_step", "tampering suspected"),
    ("monkeypatch_builtins", "gd_step", "tampering suspected"),
    ("lying_eq", "gd_step", "should be an array of shape"),
    ("lying_array_function", "gd_step", "should be an array of shape"),
    ("ndarray_subclass", "gd_step", "a subclass of numpy.ndarray"),
    ("frame_gc_introspection", "gd_step", "tampering suspected"),
    ("imports_reference", "gd_step", "uses the nnopt reference package"),
    # IPython and interpreter hooks
    ("ipython_input_transformer", "gd_step", "tampering suspected"),
    ("ipython_post_run_cell", "gd_step", "tampering suspected"),
    ("ipython_run_cell", "gd_step", "tampering suspected"),
    ("showtraceback_excepthook", "gd_step", SIGN_ERROR.diagnosis),
    ("settrace", "gd_step", "tampering suspected"),
    # reaching outside the sandbox
    ("read_secrets", "gd_step", "found nothing to leak"),
    ("write_host", "gd_step", "tried to write outside the sandbox"),
    ("network", "gd_step", "network: "),
    ("env_detection", "gd_step", "grader detected"),
    # processes and resources
    ("daemon", "gd_step", "impossible report"),
    ("os_exit", "minibatch_indices", "ended before finishing"),
    ("segfault", "momentum_step", "killed by SIGSEGV"),
    ("system_exit", "gd_step", "raised SystemExit"),
    ("fork_bomb", "gd_step", f"time limit ({WALL_SECONDS} s wall clock)"),
    ("ignores_signals", "momentum_step", f"time limit ({WALL_SECONDS} s wall clock)"),
    ("memory_bomb", "gd_step", "raised MemoryError"),
    ("output_flood", "gd_step", "output limit"),
    ("disk_flood", "gd_step", "No space left on device"),
    ("file_size", "minibatch_indices", "File too large"),
    # forged reports
    ("pickle_payload", "gd_step", "dtype dtype('O') is not allowed"),
    ("npy_header_bomb", "gd_step", "the array header declares"),
    ("deep_json_report", "gd_step", "malformed report"),
    ("huge_report", "gd_step", "raised HugeHuge"),
    ("index_out_of_range", "minibatch_indices", "is out of range"),
    # answers that are almost right
    ("float32", "momentum_step", "dtype float32, expected float64"),
    ("wrong_shape", "gd_step", "(no broadcasting)"),
    ("nan", "gd_step", "contains NaN"),
    ("in_place", "gd_step", "modified its input `theta` in place"),
    # text that must be shown safely
    ("markup_in_message", "gd_step", "alert("),
    ("lone_surrogate", "gd_step", "lone surrogate ? in the message"),
    # cells the student added
    ("added_cell_redefines_check", "gd_step", "tampering suspected"),
    ("added_cell_patches_judge", "gd_step", "tampering suspected"),
    ("added_cell_forges_report", "gd_step", "reported 0 of"),
    # notebooks
    ("duplicate_cell_ids", "gd_step", SIGN_ERROR.diagnosis),
    ("symlink_to_solutions", "gd_step", "is a symbolic link"),
]
ATTACKERS = [attacker for attacker, _, _ in ATTACKS]
UNCONFINED = {"symlink_to_solutions", "added_cell_forges_report"}  # every exercise scores 0
# Students are graded in the order of their ids, two at a time: each control comes right after
# an attack that loads the machine, so that it is graded while that attack runs.
CONTROL_AFTER = {"fork_bomb": "ctl_solution", "ignores_signals": "ctl_partial", "memory_bomb": "ctl_blank"}
CONTROLS = list(CONTROL_AFTER.values())
ORDER = [name for attacker in ATTACKERS for name in (attacker, CONTROL_AFTER.get(attacker)) if name]
STUDENT = {name: f"{position:02d}-{name}" for position, name in enumerate(ORDER)}
CANARIES = ["peer_submission", "solutions_copy", "grader_environment", "out_dir"]


def _digests(*folders):
    """One digest per folder, of its files but Python's caches."""
    digests = {}
    for folder in folders:
        digest = hashlib.sha256()
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path).encode() + path.read_bytes())
        digests[str(folder)] = digest.hexdigest()
    return digests


def _processes():
    """(pid, real uid, command line) of every process on the host."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text().splitlines()
            uid = next(int(line.split()[1]) for line in status if line.startswith("Uid:"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, StopIteration):  # it ended meanwhile
            continue
        found.append((int(entry.name), uid, command))
    return found


class Listener:
    """Records every connection to 127.0.0.1:<port> and to the abstract unix socket ``name``."""

    def __init__(self, name):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + name)
        self.unix.listen()
        self.port = self.tcp.getsockname()[1]
        self.connections = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            ready, _, _ = select.select([self.tcp, self.unix], [], [], 0.2)
            for server in ready:
                connection, address = server.accept()
                self.connections.append(address)
                connection.close()

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.tcp.close()
        self.unix.close()


def _grade(submissions_dir, out_dir, solutions, env):
    require_command("bwrap", "bubblewrap")
    command = [sys.executable, "-m", "autograde", str(submissions_dir), "--out", str(out_dir), "--workers", "2",
               "--wall-seconds", str(WALL_SECONDS), "--memory-mb", str(MEMORY_MB), "--chapter", CHAPTER,
               "--solutions", str(solutions)]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    return result, time.perf_counter() - started


def _write_controls(root, peer_canary):
    """The full solution, one known mistake (with a canary in a markdown cell and a file beside it), a blank."""
    answers = submissions.solution_answers(CHAPTER)
    submissions.write(root, STUDENT["ctl_solution"], CHAPTER, submissions.notebook_with(CHAPTER, answers))
    submissions.write(root, STUDENT["ctl_blank"], CHAPTER, submissions.student_edition(CHAPTER))
    partial = submissions.notebook_with(CHAPTER, dict(answers, momentum_step=MOMENTUM_MISTAKE.code))
    partial["cells"].append({"cell_type": "markdown", "id": "peer-notes", "metadata": {}, "source": peer_canary})
    path = submissions.write(root, STUDENT["ctl_partial"], CHAPTER, partial)
    path.with_name("notes.txt").write_text(peer_canary)


def _duplicate_cell_ids(root, answers):
    """Every cell has the same id, and the gd_step answer cell comes twice (the wrong copy last, so Run All
    defines the wrong one)."""
    notebook = submissions.notebook_with(CHAPTER, answers)
    cells = notebook["cells"]
    first = next(i for i, cell in enumerate(cells) if cell["metadata"].get("nbgrader", {}).get("grade_id") == "gd_step")
    cells.insert(first + 1, dict(copy.deepcopy(cells[first]), source=SIGN_ERROR.code))
    for cell in cells:
        cell["id"] = "same-id"
    submissions.write(root, STUDENT["duplicate_cell_ids"], CHAPTER, notebook)


def _symlink_to_solutions(root, answers):
    folder = root / STUDENT["symlink_to_solutions"] / CHAPTER
    folder.mkdir(parents=True)
    (folder / f"{CHAPTER}.ipynb").symlink_to(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")


NOTEBOOK_ATTACKS = {"duplicate_cell_ids": _duplicate_cell_ids, "symlink_to_solutions": _symlink_to_solutions}


@pytest.fixture(scope="session")
def setting(tmp_path_factory):
    """The canaries, a copy of the solutions with an extra file, and the grader's environment."""
    base = tmp_path_factory.mktemp("adversarial")
    canaries = {kind: f"canary-{kind}-{uuid.uuid4().hex}" for kind in CANARIES}
    solutions = base / "solutions"
    shutil.copytree(REPO / "solutions" / CHAPTER, solutions / CHAPTER)
    (solutions / CHAPTER / "answer_key.txt").write_text(canaries["solutions_copy"])
    env = dict(os.environ, AUTOGRADE_SECRET=canaries["grader_environment"])
    marker = f"adv-{uuid.uuid4().hex[:12]}"  # names the files, processes and sockets attackers try to create
    return {"base": base, "canaries": canaries, "solutions": solutions, "env": env, "marker": marker}


@pytest.fixture(scope="session")
def control_run(setting):
    root, out = setting["base"] / "control-in", setting["base"] / "control-out"
    _write_controls(root, setting["canaries"]["peer_submission"])
    result, seconds = _grade(root, out, setting["solutions"], setting["env"])
    print(f"\ncontrol run: {len(CONTROLS)} students in {seconds:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    return read_grades(out)


@pytest.fixture(scope="session")
def attack_run(setting):
    base, marker, canaries = setting["base"], setting["marker"], setting["canaries"]
    root, out, solutions = base / "attack-in", base / "attack-out", setting["solutions"]
    out.mkdir()
    (out / "instructor-notes.txt").write_text(canaries["out_dir"])
    _write_controls(root, canaries["peer_submission"])
    peer, other = root / STUDENT["ctl_partial"] / CHAPTER, root / STUDENT["ctl_solution"] / CHAPTER
    host_markers = [out / f"{marker}.txt", other / f"{marker}.txt", solutions / CHAPTER / f"{marker}.txt",
                    REPO / "autograde" / f"{marker}.py", Path("/tmp") / f"{marker}.txt"]
    unpickled = base / f"{marker}-unpickled"
    write_paths = [*host_markers, out / "gradebook.db", other / f"{CHAPTER}.ipynb"]
    secret_files = [peer / "notes.txt", peer / f"{CHAPTER}.ipynb", solutions / CHAPTER / "answer_key.txt",
                    solutions / CHAPTER / f"{CHAPTER}.ipynb", out / "instructor-notes.txt"]
    listener = Listener(marker)
    values = {"marker": marker, "port": listener.port, "host_marker": unpickled,
              "write_paths": "|".join(map(str, write_paths)), "secret_files": "|".join(map(str, secret_files)),
              "forged_report": (ATTACKS_DIR / "forged_report.snippet").read_text()}
    answers = submissions.solution_answers(CHAPTER)
    for attacker, exercise, _ in ATTACKS:
        if attacker in NOTEBOOK_ATTACKS:
            NOTEBOOK_ATTACKS[attacker](root, answers)
            continue
        source = string.Template((ATTACKS_DIR / f"{attacker}.py").read_text()).safe_substitute(values)
        if attacker.startswith("added_cell_"):
            notebook = submissions.notebook_with(CHAPTER, dict(answers, **{exercise: SIGN_ERROR.code}))
            cells = notebook["cells"]
            at = next(i for i, c in enumerate(cells) if c["metadata"].get("nbgrader", {}).get("grade_id") == exercise)
            cells.insert(at + 1, {"cell_type": "code", "id": "added", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": source})
        else:
            notebook = submissions.notebook_with(CHAPTER, dict(answers, **{exercise: source}))
        submissions.write(root, STUDENT[attacker], CHAPTER, notebook)

    watched = [REPO / "solutions", REPO / "chapters", REPO / "nnopt", REPO / "autograde", solutions, root]
    before = _digests(*watched)
    try:
        result, seconds = _grade(root, out, solutions, setting["env"])
    finally:
        listener.close()
    print(f"\nattack run: {len(ATTACKS)} attackers and {len(CONTROLS)} controls in {seconds:.1f} s")
    return {
        "result": result, "seconds": seconds, "out": out, "grades": read_grades(out), "marker": marker,
        "processes": _processes(), "connections": listener.connections,
        "changed": sorted(folder for folder, digest in _digests(*watched).items() if before[folder] != digest),
        "host_markers": [path for path in [*host_markers, unpickled] if path.exists()],
    }


def _scores(grades, who):
    return {e.name: float(grades[STUDENT[who], CHAPTER, e.name]["score"]) for e in exercises_of(CHAPTER)}


def _reason(grades, who, exercise):
    return grades[STUDENT[who], CHAPTER, exercise]["reason"]


def test_grader_finishes_and_grades_everyone(attack_run):
    result = attack_run["result"]
    assert result.returncode == 1, result.stderr[-3000:]  # 1: the symlinked submission was refused
    for trouble in ("Traceback", "internal grading error", "could not be recorded"):
        assert trouble not in result.stderr, result.stderr[-3000:]
    assert {who for who, _, _ in attack_run["grades"]} == set(STUDENT.values())


@pytest.mark.parametrize("attacker,exercise,phrase", ATTACKS, ids=ATTACKERS)
def test_attack_scores_zero_with_a_named_reason(attack_run, attacker, exercise, phrase):
    assert _scores(attack_run["grades"], attacker)[exercise] == 0.0
    assert phrase in _reason(attack_run["grades"], attacker, exercise)


CONFINED = [(attacker, exercise) for attacker, exercise, _ in ATTACKS if attacker not in UNCONFINED]


@pytest.mark.parametrize("attacker,exercise", CONFINED, ids=[attacker for attacker, _ in CONFINED])
def test_attackers_other_exercises_keep_full_marks(attack_run, attacker, exercise):
    others = [e for e in exercises_of(CHAPTER) if e.name != exercise]
    scores = _scores(attack_run["grades"], attacker)
    assert {e.name: scores[e.name] for e in others} == {e.name: float(e.points) for e in others}


def test_refused_submission_scores_zero_everywhere(attack_run):
    for attacker in UNCONFINED:
        assert set(_scores(attack_run["grades"], attacker).values()) == {0.0}


@pytest.mark.parametrize("control", CONTROLS)
def test_control_scores_as_when_graded_alone(attack_run, control_run, control):
    assert _scores(attack_run["grades"], control) == _scores(control_run, control)


def test_controls_alone_get_their_known_scores(control_run):
    assert _scores(control_run, "ctl_solution") == {e.name: float(e.points) for e in exercises_of(CHAPTER)}
    assert _scores(control_run, "ctl_partial") == {"gd_step": 2.0, "minibatch_indices": 3.0, "momentum_step": 0.0}
    assert set(_scores(control_run, "ctl_blank").values()) == {0.0}


def test_nothing_outside_the_run_changes(attack_run):
    assert attack_run["changed"] == []
    assert attack_run["host_markers"] == []
    with sqlite3.connect(attack_run["out"] / "gradebook.db") as database:
        tables = {name for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "pwned" not in tables


def test_gradebook_holds_what_nbgrader_recorded(attack_run):
    grades = attack_run["grades"]
    with Gradebook(f"sqlite:///{attack_run['out'] / 'gradebook.db'}", "nnopt") as gradebook:
        assert sorted(s.id for s in gradebook.students) == sorted(STUDENT.values())
        for (who, chapter, exercise), row in grades.items():
            notebook = gradebook.find_submission_notebook(chapter, chapter, who)
            assert next(g.score for g in notebook.grades if g.name == f"{exercise}_tests") == float(row["score"])


def test_no_process_of_the_run_survives(attack_run):
    left = [(pid, uid, command) for pid, uid, command in attack_run["processes"]
            if FIRST_SLOT_UID <= uid <= LAST_SLOT_UID or attack_run["marker"] in command]
    assert left == []


@pytest.mark.parametrize("kind", CANARIES)
def test_no_canary_reaches_the_csv_feedback_or_output(attack_run, setting, kind):
    canary, result, out = setting["canaries"][kind], attack_run["result"], attack_run["out"]
    assert canary not in (out / "grades.csv").read_text(encoding="utf-8")
    assert canary not in result.stdout + result.stderr
    assert [path for path in (out / "feedback").rglob("*.html") if canary in path.read_text(encoding="utf-8")] == []


def test_sandbox_reaches_no_server_on_the_host(attack_run):
    assert attack_run["connections"] == []
    assert "connected" not in _reason(attack_run["grades"], "network", "gd_step")


def test_feedback_shows_markup_and_escapes_as_text(attack_run):
    out, marker = attack_run["out"], attack_run["marker"]
    html = (out / "feedback" / STUDENT["markup_in_message"] / CHAPTER / f"{CHAPTER}.html").read_text("utf-8")
    shown = f'&lt;img src=x onerror=alert("{marker}")&gt;: &lt;script&gt;alert("{marker}")&lt;/script&gt;'
    assert f"NotPassed: gd_step raised {shown}" in html
    assert f'<script>alert("{marker}")' not in html and "<img src=x" not in html
    assert "\x1b" not in html and "\x1b" not in (out / "grades.csv").read_text(encoding="utf-8")


def test_a_forged_megabyte_reason_is_cut_short(attack_run):
    assert len(_reason(attack_run["grades"], "huge_report", "gd_step")) <= 1000
