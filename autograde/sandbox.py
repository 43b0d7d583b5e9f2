"""Run untrusted student code in a separate, locked-down process.

Layers (each stops something on its own; see book/grading.md):

* **bubblewrap** (Debian package ``bubblewrap``): new mount, PID, network, IPC,
  UTS and cgroup namespaces. The job sees read-only system libraries, the Python
  installation, the harness, and (only where the in-notebook tests need it) the
  ``nnopt`` package; nothing else of the course, the gradebook or other
  students. Its only writable place is a private, size-limited tmpfs at ``/tmp``
  that vanishes with it. No network at all, not even loopback to the host.
  When the job's main process ends, the PID namespace ends and the kernel kills
  every process left in it (daemons, fork bombs); ``--die-with-parent`` does the
  same if the grader itself dies.
* **setpriv** (util-linux): when the grader runs as root, the job runs as its own
  unprivileged uid (one per worker slot), with no capabilities and
  ``no_new_privs``; so the per-uid process limit holds.
* **setrlimit**: address space, CPU seconds, processes, file size, open files,
  no core dumps.
* **the grader's own watch**: a wall-clock limit (SIGKILL to the whole job, so a
  loop that ignores SIGINT still ends), and caps on printed output and on the
  report channel, beyond which the job is killed.

What crosses back is JSON lines on a pipe of its own, parsed with the
standard ``json`` module; arrays inside are ``.npy`` bytes read with
``allow_pickle=False``.
"""

import fcntl
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nnopt
from nnopt.exercises import wire

HARNESS = Path(__file__).with_name("harness.py")
WIRE = Path(wire.__file__)
NNOPT_DIR = Path(nnopt.__file__).parent
FIRST_SLOT_UID = 64000
MAX_SLOTS = 64
_held_slots = []  # lock files of the slots this process reserved; closing them releases the slots
OUTPUT_KEPT = 16 * 1024


class SandboxUnavailable(RuntimeError):
    """The isolation tools are missing or do not work here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job (one exercise of one submission)."""

    wall_seconds: float = 20.0
    cpu_seconds: int = 15
    memory_bytes: int = 2 << 30
    processes: int = 8  # per job (its own uid): bounds a fork bomb's share of the CPU and its memory
    file_bytes: int = 16 << 20
    scratch_bytes: int = 64 << 20
    output_bytes: int = 1 << 20
    report_bytes: int = 8 << 20
    open_files: int = 256


@dataclass
class Outcome:
    """What a job left behind: the events it reported and how it ended."""

    events: list
    ending: str  # "finished", or why it did not: "time limit", "killed by SIGSEGV", ...
    output: str  # the first OUTPUT_KEPT bytes of what it printed
    seconds: float

    @property
    def finished(self):
        return self.ending == "finished"


def reserve_slots(count):
    """Reserve ``count`` job slots (each runs as uid FIRST_SLOT_UID + slot) for this process.

    A slot's uid carries the per-uid process limit, so two grading runs on one host
    must not share one: each slot is held with an exclusive ``flock`` until this
    process ends.
    """
    if not 1 <= count <= MAX_SLOTS:
        raise ValueError(f"workers must be between 1 and {MAX_SLOTS}, got {count}")
    directory = Path(tempfile.gettempdir()) / "nnopt-autograde-slots"
    directory.mkdir(mode=0o700, exist_ok=True)
    reserved = []
    for slot in range(MAX_SLOTS):
        if len(reserved) == count:
            break
        handle = open(directory / f"{slot}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held_slots.append(handle)
        reserved.append(slot)
    if len(reserved) < count:
        raise SandboxUnavailable(f"only {len(reserved)} of {count} worker slots are free; other grading runs hold the rest")
    return reserved


def _system_binds():
    """Read-only system directories (Debian's merged /usr: /lib, /bin are links)."""
    arguments = ["--ro-bind", "/usr", "/usr"]
    for path in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    return arguments


def _read_only(pairs):
    """``--ro-bind`` each (source, destination), creating the parents world-readable first.

    (bwrap would create missing parents with mode 0700, which the job's uid could not enter.)
    """
    arguments, made = [], set()
    for source, destination in pairs:
        parents = list(Path(destination).parents)[::-1][1:]
        for parent in parents:
            if str(parent) not in made:
                made.add(str(parent))
                arguments += ["--perms", "0755", "--dir", str(parent)]
        arguments += ["--ro-bind", str(source), str(destination)]
    return arguments


def _python_prefixes():
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    return [(prefix, prefix) for prefix in sorted(prefixes) if not prefix.startswith("/usr/")]


class Sandbox:
    """Runs the harness on a request, isolated (``bwrap``) or, if asked explicitly, not (``unsafe``)."""

    def __init__(self, unsafe=False):
        self.unsafe = unsafe
        self.as_root = os.geteuid() == 0
        if not unsafe:
            self._check_tools()

    def _check_tools(self):
        missing = [tool for tool in ("bwrap", "setpriv") if shutil.which(tool) is None]
        if missing:
            raise SandboxUnavailable(
                f"{' and '.join(missing)} not found: student code is only run inside a sandbox. "
                "Install it with `sudo apt-get install bubblewrap util-linux`, or pass "
                "--unsafe-no-sandbox to grade without isolation (only for code you trust)."
            )
        probe = subprocess.run(
            self._command(Limits(), slot=0, with_nnopt=False, program=["/usr/bin/true"]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode != 0:
            raise SandboxUnavailable(
                "bubblewrap is installed but cannot create its namespaces here "
                f"({probe.stderr.strip()[:300]}). Run the grader as root or where unprivileged "
                "user namespaces are allowed, or pass --unsafe-no-sandbox (only for code you trust)."
            )

    def _command(self, limits, slot, with_nnopt, program=None):
        python = [sys.executable, "-I", "/opt/harness/harness.py"]
        if self.unsafe:
            return [sys.executable, "-I", str(HARNESS)]
        command = [
            "bwrap",
            *([] if self.as_root else ["--unshare-user"]),  # as root, setpriv below drops to a real uid
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "HOME", "/tmp",
            "--setenv", "TMPDIR", "/tmp",
            "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONIOENCODING", "utf-8",
            "--setenv", "OPENBLAS_NUM_THREADS", "1",
            "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "MPLBACKEND", "Agg",
            "--setenv", "IPYTHONDIR", "/tmp/.ipython",
            "--setenv", "MPLCONFIGDIR", "/tmp/.matplotlib",
            "--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", "/tmp",  # first: binds may lie below
            *_system_binds(),
            *_read_only(
                _python_prefixes()
                + [(HARNESS, "/opt/harness/harness.py"), (WIRE, "/opt/harness/wire.py")]
                + ([(NNOPT_DIR, "/opt/course/nnopt")] if with_nnopt else [])
            ),
        ]
        command += [
            "--proc", "/proc",
            "--dev", "/dev",
            "--chdir", "/tmp",
        ]
        if self.as_root:
            uid = str(FIRST_SLOT_UID + slot)
            command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv",
                        f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                        "--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            command += ["--"]
        return command + (program or python)

    def _set_limits(self, limits):
        def apply():
            for which, value in (
                (resource.RLIMIT_AS, limits.memory_bytes),
                (resource.RLIMIT_CPU, limits.cpu_seconds),
                (resource.RLIMIT_FSIZE, limits.file_bytes),
                (resource.RLIMIT_NOFILE, limits.open_files),
                (resource.RLIMIT_CORE, 0),
            ):
                hard = value + 1 if which == resource.RLIMIT_CPU else value
                resource.setrlimit(which, (value, hard))
            if self.as_root or self.unsafe:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

        return apply

    def run(self, request, limits=Limits(), slot=0, with_nnopt=False):
        """Run the harness on ``request`` (a dict) and collect what it reports."""
        if with_nnopt:
            request = dict(request, paths=["/opt/course"] if not self.unsafe else [str(NNOPT_DIR.parent)])
        if self.unsafe:
            request = dict(request, paths=[str(WIRE.parent)] + request.get("paths", []))
        report_read, report_write = os.pipe()
        started = time.monotonic()
        process = subprocess.Popen(
            self._command(limits, slot, with_nnopt) + [str(report_write)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(report_write,),
            preexec_fn=self._set_limits(limits),
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin"},  # not the grader's: the sandbox's pid 1 (bwrap) keeps what it is given
            cwd="/tmp" if self.unsafe else None,
        )
        os.close(report_write)
        try:
            process.stdin.write(json.dumps(request).encode())
            process.stdin.close()
        except OSError:  # the job ended before reading its request; its exit says why
            pass
        collected = _collect(process, report_read, limits, started)
        ending = collected["ending"]
        process.wait()
        if self.as_root and not self.unsafe:
            _wait_until_gone(FIRST_SLOT_UID + slot)
        if ending is None:
            ending = _describe_exit(process.returncode)
        events, malformed = _parse(collected["report"])
        if malformed and ending == "finished":
            ending = "sent a malformed report"
        if ending == "finished" and not any(event.get("event") == "done" for event in events):
            ending = "ended before finishing"
        return Outcome(events, ending, collected["output"].decode("utf-8", "replace"), time.monotonic() - started)


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _processes_of(uid):
    """Host pids of the processes whose real uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as status:
                uid_line = next(line for line in status if line.startswith("Uid:"))
        except (OSError, StopIteration):  # it ended while we looked
            continue
        if int(uid_line.split()[1]) == uid:
            found.append(int(entry.name))
    return found


def _wait_until_gone(uid, timeout=10.0):
    """Wait while the kernel finishes off a job's processes (its PID namespace is gone).

    Until they are reaped they still count against the slot's process limit, so the
    next job in this slot could fail to start; and none of them may outlive the run.
    """
    deadline = time.monotonic() + timeout
    while _processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _collect(process, report_read, limits, started):
    """Read output and report until both close, enforcing the wall clock and the byte caps."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ, "output")
    selector.register(report_read, selectors.EVENT_READ, "report")
    kept = {"output": bytearray(), "report": bytearray()}
    total_output = 0
    ending = None
    open_streams = 2
    while open_streams:
        remaining = limits.wall_seconds - (time.monotonic() - started)
        if remaining <= 0:
            ending = ending or f"time limit ({limits.wall_seconds:g} s wall clock)"
            _kill(process)
            break
        for key, _ in selector.select(timeout=min(remaining, 0.5)):
            stream = key.fileobj
            chunk = os.read(stream if isinstance(stream, int) else stream.fileno(), 65536)
            if not chunk:
                selector.unregister(stream)
                open_streams -= 1
                continue
            if key.data == "output":
                total_output += len(chunk)
                room = OUTPUT_KEPT - len(kept["output"])
                kept["output"] += chunk[: max(room, 0)]
                if total_output > limits.output_bytes:
                    ending = f"output limit ({limits.output_bytes} bytes printed)"
                    _kill(process)
            else:
                kept["report"] += chunk
                if len(kept["report"]) > limits.report_bytes:
                    ending = f"report limit ({limits.report_bytes} bytes)"
                    _kill(process)
        if ending and process.poll() is not None:
            break
    selector.close()
    os.close(report_read)
    process.stdout.close()
    return {"ending": ending, "output": bytes(kept["output"]), "report": bytes(kept["report"])}


def _describe_exit(code):
    if code == 0:
        return "finished"
    number = -code if code < 0 else code - 128 if code > 128 else None
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        meaning = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)", "SIGKILL": " (out of memory or killed)"}
        return f"killed by {name}{meaning.get(name, '')}"
    return f"exited with status {code}"


def _parse(report):
    """Parse JSON lines; a line that is not a JSON object is malformed and ends the parse."""
    events = []
    for line in report.split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            return events, True
        if not isinstance(event, dict):
            return events, True
        events.append(event)
    return events, False
