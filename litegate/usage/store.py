"""UsageStore: what the async app holds (under an AppKey) to account usage.

Threads: record() only appends to a bounded in-memory buffer. One writer thread owns the write
connection and does every insert, migration and retention (see writer.py). Reads go through one
door, query(fn, *args), which runs fn(conn, *args) on a single reader thread that owns a second,
query-only connection (WAL lets it read while the writer writes, and a slow dashboard query never
delays a flush). Nothing here touches SQLite on the event loop thread.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from litegate.errors import GatewayError
from litegate.usage import db
from litegate.usage import queries
from litegate.usage.buffer import Buffer, resolve
from litegate.usage.rows import KeySums, Point, Totals, UsageRow
from litegate.usage.writer import Options, Writer

T = TypeVar("T")
DB_NAME = "usage.db"
_FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

log = structlog.get_logger("litegate.usage")


class UsageUnavailable(GatewayError):
    """The usage database cannot be read right now (not open yet, locked, or the store is closed)."""

    status = 503
    type = "service_unavailable_error"
    code = "usage_unavailable"


def db_file(path: str | os.PathLike[str]) -> Path:
    """A path ending in .db/.sqlite/.sqlite3 names the file; anything else is a data directory."""
    p = Path(path).expanduser()
    return p if p.suffix in _FILE_SUFFIXES else p / DB_NAME


class UsageStore:
    """Usage accounting in SQLite under a data dir; see the package docstring for the guarantees."""

    def __init__(self, path: str | os.PathLike[str], *, retention_days: float | None = 90,
                 flush_interval: float = 0.5, batch_size: int = 200, buffer_limit: int = 100_000,
                 busy_timeout: float = 2.0, retry_interval: float = 5.0, retention_interval: float = 86400.0) -> None:
        self.db_path = db_file(path)
        self._buf = Buffer(buffer_limit, batch_size)
        opts = Options(retention_days, flush_interval, busy_timeout, retry_interval, retention_interval)
        self._writer = Writer(self.db_path, self._buf, opts)
        self._reader = _Reader(self.db_path, busy_timeout, lambda: self._writer.generation)

    @property
    def available(self) -> bool:
        """True while the writer holds an open, migrated database."""
        return self._writer.available

    async def start(self) -> bool:
        """Start the writer; wait for its first attempt to open the database. Never raises for a
        bad database: False means rows are being buffered while it retries."""
        if self._writer.ident is not None:
            return self.available
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        self._writer.launch(lambda ok: resolve(loop, ready, ok))
        return await ready

    def record(self, row: UsageRow) -> None:
        """Enqueue a row: thread-safe, O(1), never blocks on I/O, never raises. After close() the
        row is counted as dropped."""
        self._buf.put(row)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row recorded before the call has left memory (written, or dropped by the
        bound). Asks the writer to write (and to retry an unavailable database) now. False on
        timeout, or when the writer is not running and rows are pending."""
        if self._writer.ident is None:
            return self._buf.pending() == 0
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        answer = self._buf.add_waiter(loop, fut)
        if answer is not None:
            return answer
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._buf.remove_waiter(fut)
            return False

    async def close(self, timeout: float = 10.0) -> bool:
        """Refuse new rows, write everything pending, stop both threads. True when nothing was lost.

        If the database is still unusable at close, one last attempt is made and what remains is
        logged as usage_rows_lost. Safe to call twice."""
        try:
            return await self._stop_writer(timeout)
        finally:
            await self._reader.close()

    async def _stop_writer(self, timeout: float) -> bool:
        if self._writer.ident is None:  # never started: nothing can write what was recorded
            lost = self._buf.abandon()
            if lost:
                log.error("usage_rows_lost", count=lost, path=str(self.db_path), error="store never started")
            return lost == 0
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not self._buf.stop(loop, done):
            return self._buf.pending() == 0
        try:
            return await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            log.error("usage_close_timeout", pending=self._buf.pending(), timeout_s=timeout)
            return False

    def stats(self) -> dict[str, Any]:
        """Counters for metrics and /health."""
        return {**self._buf.counts(), "available": self.available, "last_error": self._writer.last_error,
                "db_path": str(self.db_path)}

    # ---------------------------------------------------------------- reads: the one door
    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) on the reader thread's query-only connection."""
        return await self._reader.run(fn, *args)

    async def totals(self, since: float, until: float | None = None, group_by: str | None = None,
                     *, utc_offset_s: int = 0) -> list[Totals]:
        """group_by: None (one overall row), "key", "model", "deployment", "day" or "hour"."""
        return await self.query(queries.totals, since, until, group_by, utc_offset_s)

    async def timeseries(self, since: float, until: float | None, bucket_s: int, split_by: str | None = None,
                         *, utc_offset_s: int = 0) -> list[Point]:
        """split_by: None, "model" or "key"."""
        return await self.query(queries.timeseries, since, until, bucket_s, split_by, utc_offset_s)

    async def recent_errors(self, limit: int = 50) -> list[UsageRow]:
        return await self.query(queries.recent_errors, limit)

    async def sums_by_key_since(self, since: float) -> dict[str, KeySums]:
        return await self.query(queries.sums_by_key_since, since)


class _Reader:
    """One thread, one query-only connection, reopened when the writer reopens the file."""

    def __init__(self, db_path: Path, busy_timeout: float, generation: Callable[[], int]) -> None:
        self._db_path = db_path
        self._busy_timeout = busy_timeout
        self._generation = generation
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="litegate-usage-read")
        self._closed = False
        self._conn: sqlite3.Connection | None = None  # touched only on the reader thread
        self._conn_generation = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise UsageUnavailable("the usage store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple) -> T:
        generation = self._generation()
        if generation == 0:
            raise UsageUnavailable("the usage database has not been opened yet")
        try:
            if self._conn is None or self._conn_generation != generation:
                self._disconnect()
                self._conn = db.connect_reader(self._db_path, self._busy_timeout)
                self._conn_generation = generation
            return fn(self._conn, *args)
        except sqlite3.Error as e:
            self._disconnect()
            raise UsageUnavailable(f"usage database: {db.describe(e)}") from e

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._pool, self._disconnect)
        self._pool.shutdown(wait=False)
