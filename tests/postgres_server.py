"""A throwaway PostgreSQL server for the tests and the benchmark.

It uses the server of Debian's ``postgresql`` package (``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/*/bin``, or from PATH), with its data in a temporary folder and
listening only on a unix socket in that folder (no TCP port, so parallel test runs
never collide). PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` user that the Debian package creates.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "postgres"


class Unavailable(RuntimeError):
    """PostgreSQL is not installed here (or cannot run as this user)."""


def _binaries():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    for folder in candidates:
        if os.access(Path(folder) / "initdb", os.X_OK) and os.access(Path(folder) / "pg_ctl", os.X_OK):
            return Path(folder)
    raise Unavailable("PostgreSQL is not installed (Debian: apt-get install postgresql)")


class Server:
    """``with Server() as server: url = server.create_database("name")``; stopped and removed at the end."""

    def __init__(self):
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="pg-"))  # short: a socket path has at most 107 bytes
        self.as_user = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.folder)
                raise Unavailable("PostgreSQL refuses to run as root, and there is no `postgres` user to run it "
                                  "(Debian's postgresql package creates one)") from None
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.as_user = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
        data = self.folder / "data"
        try:
            self._run("initdb", "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
            options = f"-k {self.folder} -c listen_addresses= -c fsync=off -c synchronous_commit=off"
            self._run("pg_ctl", "-D", data, "-l", self.folder / "server.log", "-o", options, "-w", "start")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def _run(self, program, *arguments):
        command = [*self.as_user, str(self.bin / program), *map(str, arguments)]
        result = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {(result.stderr or result.stdout).strip()[-1000:]}")

    def url(self, database):
        """The SQLAlchemy URL of ``database`` on this server (over its unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.folder}"

    def create_database(self, name):
        with psycopg.connect(host=str(self.folder), user=SUPERUSER, dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.folder / "data", "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
