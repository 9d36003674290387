"""The database file: connecting (WAL, synchronous=NORMAL), the migrations list, inserts,
retention, and what to do with a file SQLite says is not a healthy database.

Only the writer thread calls open_db/insert/prune; the reader thread calls connect_reader.

Corrupt file decision: a file SQLite reports as not a database or malformed (SQLITE_NOTADB,
SQLITE_CORRUPT, or a failed quick_check after a write hit corruption) is renamed, with its -wal
and -shm, to `<name>.corrupt-<UTC stamp>` and a fresh database is created in its place: usage
history is lost but kept on disk for forensics, and the gateway keeps accounting. A locked file or
one with a newer schema than this code knows is never touched: the store reports it unavailable.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from litegate.usage.rows import COLUMNS

# Append only: step N (1-based) takes the database from user_version N-1 to N. Never edit a step
# that has shipped; add one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            key_name TEXT NOT NULL,
            model TEXT NOT NULL,
            deployment TEXT,
            route TEXT,
            endpoint TEXT NOT NULL,
            status INTEGER NOT NULL,
            error_code TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL DEFAULT 0,
            ttft_ms REAL,
            server_tool_calls INTEGER NOT NULL DEFAULT 0,
            stream INTEGER NOT NULL DEFAULT 0
        )""",
        # every dashboard query and retention range-scans on time
        "CREATE INDEX usage_ts ON usage(ts)",
    ),
    (
        # recent_errors: newest errors without scanning the healthy majority
        "CREATE INDEX usage_errors_ts ON usage(ts) WHERE status >= 400 OR error_code IS NOT NULL",
    ),
    (
        # which inbound API the request came in on (openai, anthropic, responses, ollama)
        "ALTER TABLE usage ADD COLUMN face TEXT NOT NULL DEFAULT 'openai'",
    ),
    (
        # who a failure is down to (errors.error_class): model errors apart from policy and client ones
        "ALTER TABLE usage ADD COLUMN error_class TEXT",
        """UPDATE usage SET error_class = CASE
               WHEN error_code IN ('rate_limit_requests', 'rate_limit_tokens', 'concurrency_limit',
                                   'budget_exceeded', 'model_not_allowed', 'admin_required') THEN 'policy'
               WHEN status >= 500 OR status < 400 THEN 'backend'
               WHEN error_code IN ('upstream_error', 'backend_unavailable', 'backend_timeout', 'stream_interrupted',
                                   'server_is_overloaded', 'backend_auth_error', 'deployment_at_capacity',
                                   'rate_limit_exceeded') THEN 'backend'
               WHEN status = 403 THEN 'policy'
               ELSE 'client' END
           WHERE status >= 400 OR error_code IS NOT NULL""",
    ),
)

INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class SchemaTooNew(sqlite3.DatabaseError):
    """The file was written by a newer litegate; this one leaves it alone."""


class CorruptDatabase(sqlite3.DatabaseError):
    """quick_check found damage."""


def connect(db_path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and synchronous=NORMAL."""
    conn = sqlite3.connect(db_path, timeout=busy_timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(db_path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=busy_timeout, isolation_level=None)
    conn.execute("PRAGMA query_only=ON")
    return conn


def migrate(conn: sqlite3.Connection, steps: tuple[tuple[str, ...], ...] = MIGRATIONS) -> int:
    """Apply the missing steps in order, each in its own transaction with its version bump."""
    while True:
        conn.execute("BEGIN IMMEDIATE")  # read the version under the write lock: two processes may race
        try:
            have = conn.execute("PRAGMA user_version").fetchone()[0]
            if have > len(steps):
                raise SchemaTooNew(f"schema version {have} is newer than this litegate's {len(steps)}")
            if have == len(steps):
                conn.execute("COMMIT")
                return have
            for sql in steps[have]:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {have + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def check(conn: sqlite3.Connection) -> None:
    result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    if result != "ok":
        raise CorruptDatabase(f"quick_check: {result}")


def open_db(db_path: Path, busy_timeout: float, *, suspect: bool = False,
            steps: tuple[tuple[str, ...], ...] = MIGRATIONS) -> tuple[sqlite3.Connection, Path | None]:
    """Connect and migrate (`steps`: the usage schema unless another file's); a corrupt file is moved
    aside and replaced. Returns (conn, moved_to)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(db_path, busy_timeout, suspect, steps), None
    except sqlite3.DatabaseError as e:
        if not is_corrupt(e):
            raise
    moved_to = move_aside(db_path)
    return _open(db_path, busy_timeout, False, steps), moved_to


def _open(db_path: Path, busy_timeout: float, suspect: bool, steps: tuple[tuple[str, ...], ...]) -> sqlite3.Connection:
    conn = connect(db_path, busy_timeout)
    try:
        if suspect:
            check(conn)
        migrate(conn, steps)
    except BaseException:
        conn.close()
        raise
    return conn


def move_aside(db_path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = db_path.with_name(f"{db_path.name}.corrupt-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = db_path.with_name(f"{db_path.name}.corrupt-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db_path}{suffix}")
        if src.exists():
            src.rename(f"{dest}{suffix}")
    return dest


def insert(conn: sqlite3.Connection, params: list[tuple]) -> None:
    """One transaction for the batch: all rows land or none do."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(INSERT, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Delete rows older than `before` (unix seconds); returns how many."""
    return conn.execute("DELETE FROM usage WHERE ts < ?", (before,)).rowcount


def is_corrupt(e: BaseException) -> bool:
    if isinstance(e, CorruptDatabase):
        return True
    name = getattr(e, "sqlite_errorname", None)  # Python 3.11+
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(e)
    return type(e) is sqlite3.DatabaseError and ("not a database" in text or "malformed" in text)


def is_row_error(e: BaseException) -> bool:
    """A failure caused by the row's values (a caller bug), not by the database being unusable."""
    bad_value = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError,
                 TypeError, ValueError, OverflowError)
    return isinstance(e, bad_value)


def describe(e: BaseException) -> str:
    """An error for the log: SQLite's messages name columns and files, never row values."""
    name = getattr(e, "sqlite_errorname", None)
    return f"{type(e).__name__}: {e}" + (f" ({name})" if name else "")
