"""The grading run's database: nbgrader's gradebook and the grader's own tables, side by side.

``--db URL`` is any SQLAlchemy URL that nbgrader can use (PostgreSQL through the pinned ``psycopg``
driver is the tested one; ``postgresql://`` means ``postgresql+psycopg://``); the default is SQLite,
``OUT_DIR/gradebook.db``. Besides nbgrader's tables, the grader keeps three of its own, so that shards
running on different machines, with different ``OUT_DIR`` folders, share everything through the
database alone:

* ``autograde_verdict``: one row per student and chapter: the trusted verdict (JSON), the sha256 of
  the submitted file, whether nbgrader has recorded it, the autograded notebook (zlib-compressed
  JSON, from which any machine writes the feedback), the shard that wrote it and when;
* ``autograde_problem``: the CSV rows of files that could not be attributed to a student and
  chapter, per run scope (``all`` or one chapter);
* ``autograde_chapter``: the chapters registered in the database, with the course id: a database
  that holds another course's gradebook is refused.

nbgrader's own writes (creating its tables, ``generate_assignment`` and ``autograde``) are not safe
from several processes at once (its ``create_all`` and its ``update_or_create_*`` read, then
write), so every process holds one PostgreSQL advisory lock around each of them
(:meth:`Database.gradebook_lock`). Rows of the grader's tables are each written by the one shard
that owns the student, and need no lock. A second process that runs the same shard waits for the
first to end (:meth:`Database.claim`): a shard started twice, or the replacement of a node that died
before the server noticed, never grades next to the other.
"""

import contextlib
import datetime
import hashlib
import json
import time
import zlib

import sqlalchemy as sa
from sqlalchemy.engine import make_url

metadata = sa.MetaData()
CHAPTERS = sa.Table(
    "autograde_chapter", metadata,
    sa.Column("chapter", sa.String(128), primary_key=True),
    sa.Column("course_id", sa.String(128), nullable=False),
)
VERDICTS = sa.Table(
    "autograde_verdict", metadata,
    sa.Column("student", sa.String(128), primary_key=True),
    sa.Column("chapter", sa.String(128), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("recorded", sa.Boolean, nullable=False),
    sa.Column("autograded", sa.LargeBinary),
    sa.Column("shard", sa.String(32), nullable=False),
    sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
)
PROBLEMS = sa.Table(
    "autograde_problem", metadata,
    sa.Column("scope", sa.String(128), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("csv_row", sa.Text, nullable=False),
)


class BadDatabase(ValueError):
    """The database cannot be used: unreachable, not a URL, or another course's."""


def _lock_key(name):
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for ``name``."""
    return int.from_bytes(hashlib.sha256(f"autograde:{name}".encode()).digest()[:8], "big", signed=True)


def _first_line(error):
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def problem_key(row):
    """What a problem row is about (the student id or file name, else its reason): it decides the shard."""
    return row[0] or row[5]


class Database:
    """A connection to the run's database. Raises :class:`BadDatabase` if it cannot be reached."""

    def __init__(self, url):
        try:
            url = make_url(url)
            if url.drivername == "postgresql":
                url = url.set(drivername="postgresql+psycopg")  # the driver in requirements.txt
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
            raise BadDatabase(f"--db: {_first_line(error)}") from None
        self.url = url
        self.shown = url.render_as_string(hide_password=True)  # for messages
        self._claimed = None
        # seconds this process held the gradebook lock, of CPU time in this thread while holding it, and waiting for it
        self.lock_held = self.lock_cpu = self.lock_waited = 0.0
        try:
            with self.engine.connect():
                pass
        except sa.exc.SQLAlchemyError as error:
            self.engine.dispose()
            raise BadDatabase(f"cannot reach the database {self.shown}: {_first_line(error)}") from None

    @property
    def url_text(self):
        """The URL as nbgrader needs it (with the password, if the URL given had one)."""
        return self.url.render_as_string(hide_password=False)

    @property
    def server(self):
        """Whether this is a database server that several machines can share (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    def close(self):
        if self._claimed is not None:
            self._claimed.close()
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def gradebook_lock(self):
        """Hold the database-wide lock for a write to nbgrader's tables (PostgreSQL; elsewhere one process
        writes and nothing is taken). Released when the block ends, or by the server when the process dies."""
        if not self.server:
            yield
            return
        key = _lock_key("gradebook")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            asked = time.monotonic()
            connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
            got, cpu = time.monotonic(), time.thread_time()
            try:
                yield
            finally:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                self.lock_waited += got - asked
                self.lock_held += time.monotonic() - got
                self.lock_cpu += time.thread_time() - cpu

    def claim(self, shard, waiting=lambda: None):
        """Hold ``shard``'s lock until this process ends (PostgreSQL), so that a shard never runs twice at once;
        if another process holds it, call ``waiting()`` and wait for it to end."""
        if not self.server:
            return
        key = _lock_key(f"shard {shard}")
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if not connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
            waiting()
            connection.execute(sa.select(sa.func.pg_advisory_lock(key)))
        self._claimed = connection

    def check_course(self, course_id, chapters):
        """Refuse a database that holds another course's gradebook (before writing anything to it); create the
        grader's tables and register ``chapters``. Call it under :meth:`gradebook_lock`."""
        chapters = set(chapters)
        with self.engine.begin() as connection:
            tables, found = set(sa.inspect(connection).get_table_names()), []
            if CHAPTERS.name in tables:
                found += [(row.course_id, row.chapter) for row in connection.execute(sa.select(CHAPTERS))]
            if "assignment" in tables:  # nbgrader's
                found += list(connection.execute(sa.text("SELECT course_id, name FROM assignment")))
            foreign = sorted({course for course, _ in found if course != course_id})
            if foreign:
                names = ", ".join(sorted({name for course, name in found if course != course_id})[:5])
                raise BadDatabase(f"the database {self.shown} holds another course's gradebook (course "
                                  f"{', '.join(map(repr, foreign))}: {names}); give course {course_id!r} a database "
                                  "of its own")
            unknown = sorted({name for _, name in found} - chapters)
            if unknown:
                raise BadDatabase(f"the database {self.shown} holds chapters that this course's solutions do not have "
                                  f"({', '.join(unknown[:5])}): grade with the same course (and --solutions) as the "
                                  "runs that filled it")
            metadata.create_all(connection)
            missing = sorted(chapters - {name for _, name in found})
            if missing:
                connection.execute(sa.insert(CHAPTERS), [{"chapter": c, "course_id": course_id} for c in missing])

    def stored(self, student, chapter):
        """The stored row of ``student``'s ``chapter`` as a dict (verdict decoded), or None."""
        query = sa.select(VERDICTS.c.sha256, VERDICTS.c.verdict, VERDICTS.c.recorded).where(
            VERDICTS.c.student == student, VERDICTS.c.chapter == chapter)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else {"sha256": row.sha256, "verdict": json.loads(row.verdict), "recorded": row.recorded}

    def save(self, verdict, recorded, shard, autograded=None):
        """Write ``verdict`` (as ``trusted.grade`` returns it) for its student and chapter; ``autograded``
        is nbgrader's autograded notebook (JSON text) once recorded."""
        values = {"sha256": verdict["sha256"], "verdict": json.dumps(verdict), "recorded": recorded, "shard": str(shard),
                  "autograded": zlib.compress(autograded.encode()) if autograded is not None else None,
                  "updated": datetime.datetime.now(datetime.timezone.utc)}
        key = (VERDICTS.c.student == verdict["student"], VERDICTS.c.chapter == verdict["chapter"])
        with self.engine.begin() as connection:  # only the shard that owns the student writes its rows
            if not connection.execute(sa.update(VERDICTS).where(*key).values(values)).rowcount:
                connection.execute(sa.insert(VERDICTS).values(student=verdict["student"], chapter=verdict["chapter"],
                                                              **values))

    def verdicts(self):
        """Every stored verdict, by student and chapter."""
        query = sa.select(VERDICTS.c.verdict).order_by(VERDICTS.c.student, VERDICTS.c.chapter)
        with self.engine.connect() as connection:
            return [json.loads(row.verdict) for row in connection.execute(query)]

    def autograded(self):
        """``(student, chapter, notebook JSON text)`` for every recorded submission."""
        query = (sa.select(VERDICTS.c.student, VERDICTS.c.chapter, VERDICTS.c.autograded)
                 .where(VERDICTS.c.recorded, VERDICTS.c.autograded.is_not(None))
                 .order_by(VERDICTS.c.student, VERDICTS.c.chapter))
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                yield row.student, row.chapter, zlib.decompress(row.autograded).decode()

    def replace_problems(self, scope, shard, rows):
        """Replace the problem rows of run scope ``scope`` that fall in ``shard`` by ``rows``."""
        rows = {hashlib.sha256(json.dumps(row).encode()).hexdigest(): row for row in rows}
        with self.engine.begin() as connection:
            for stored in connection.execute(sa.select(PROBLEMS).where(PROBLEMS.c.scope == scope)).all():
                if shard.holds(problem_key(json.loads(stored.csv_row))):
                    connection.execute(sa.delete(PROBLEMS).where(PROBLEMS.c.scope == scope,
                                                                 PROBLEMS.c.digest == stored.digest))
            if rows:
                connection.execute(sa.insert(PROBLEMS), [{"scope": scope, "digest": digest, "csv_row": json.dumps(row)}
                                                         for digest, row in rows.items()])

    def problems(self):
        """Every stored problem row, by scope."""
        query = sa.select(PROBLEMS.c.csv_row).order_by(PROBLEMS.c.scope, PROBLEMS.c.csv_row)
        with self.engine.connect() as connection:
            return [json.loads(row.csv_row) for row in connection.execute(query)]
