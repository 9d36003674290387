"""The writer thread: the only owner of the write connection.

It wakes every flush_interval, on a full batch, on a flush or on close; writes what is buffered in
batch transactions; runs retention when the database opens and every retention_interval after.
When the database cannot be opened or written (locked, unwritable, newer schema, a corrupt file
that could not be moved aside) it logs usage_store_unavailable once per outage, keeps the rows
buffered (the bound drops the oldest), retries every retry_interval or at once on flush/close,
and logs usage_store_recovered when writing works again. It never logs a row's contents.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from litegate.usage import db
from litegate.usage.buffer import Buffer, Entry
from litegate.usage.rows import as_params

log = structlog.get_logger("litegate.usage")


@dataclass(frozen=True)
class Options:
    retention_days: float | None = 90
    flush_interval: float = 0.5
    busy_timeout: float = 2.0
    retry_interval: float = 5.0
    retention_interval: float = 86400.0


class Writer(threading.Thread):
    def __init__(self, db_path: Path, buf: Buffer, opts: Options) -> None:
        super().__init__(name="litegate-usage-writer", daemon=True)
        self.db_path = db_path
        self.buf = buf
        self.opts = opts
        self.conn: sqlite3.Connection | None = None
        # read by other threads: plain attribute stores are atomic
        self.generation = 0  # bumped on every successful open; the reader reconnects when it changes
        self.available = False
        self.last_error: str | None = None
        self._on_ready: Callable[[bool], None] = lambda ok: None
        self._suspect = False
        self._outage_dropped: int | None = None  # dropped count when the outage began; None = no outage
        self._full_logged = False
        self._next_retry = 0.0
        self._next_retention = 0.0

    def launch(self, on_ready: Callable[[bool], None]) -> None:
        """Start the thread; on_ready(available) is called after the first attempt to open."""
        self._on_ready = on_ready
        self.start()

    def run(self) -> None:
        try:
            self._open()
        finally:  # start() awaits this whatever happens
            self._on_ready(self.conn is not None)
        stopping = False
        while not stopping:
            try:
                stopping = self._cycle()
            except Exception as e:  # a bug here must not end accounting: rows stay buffered
                log.exception("usage_writer_failed", error=db.describe(e))
                self._lose(e)
        self._finish()

    def _cycle(self) -> bool:
        stopping, urgent = self.buf.wait(self.opts.flush_interval, ready=self.conn is not None)
        if self.conn is None and (stopping or urgent or time.monotonic() >= self._next_retry):
            self._open()
        if self.conn is not None:
            self._drain()
        if self.conn is not None and time.monotonic() >= self._next_retention:
            self._retain()
        self._note_drops()
        self.buf.settle()
        return stopping

    # ---------------------------------------------------------------- opening and losing the db
    def _open(self) -> None:
        try:
            conn, moved_to = db.open_db(self.db_path, self.opts.busy_timeout, suspect=self._suspect)
        except Exception as e:
            self._lose(e)
            return
        if moved_to is not None:
            log.error("usage_store_corrupt", path=str(self.db_path), moved_to=str(moved_to))
        self.conn, self._suspect, self.available = conn, False, True
        self.generation += 1
        if self._outage_dropped is not None:
            log.info("usage_store_recovered", path=str(self.db_path), pending=self.buf.pending(),
                     dropped=self.buf.dropped - self._outage_dropped)
            self._outage_dropped, self._full_logged = None, False
        self._retain()

    def _lose(self, e: BaseException) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
        self.conn, self.available = None, False
        self._suspect = self._suspect or db.is_corrupt(e)
        self._next_retry = time.monotonic() + self.opts.retry_interval
        self.last_error = db.describe(e)
        if self._outage_dropped is None:
            self._outage_dropped = self.buf.dropped
            log.warning("usage_store_unavailable", path=str(self.db_path), error=self.last_error,
                        retry_s=self.opts.retry_interval, buffer_limit=self.buf.limit)

    def _note_drops(self) -> None:
        """Say once per outage that the buffer is full; stats() and the recovery event count the rest."""
        if self._outage_dropped is None or self._full_logged or self.buf.dropped == self._outage_dropped:
            return
        self._full_logged = True
        log.warning("usage_buffer_full", buffer_limit=self.buf.limit, path=str(self.db_path))

    # ---------------------------------------------------------------- writing
    def _drain(self) -> None:
        """Write batches until the buffer is empty or the database fails."""
        while self.conn is not None:
            batch = self.buf.take()
            if not batch:
                return
            try:
                db.insert(self.conn, [as_params(row) for _, row in batch])
            except Exception as e:
                if db.is_row_error(e):
                    self._insert_each(batch)
                else:
                    self.buf.finish_batch(0, unwritten=batch)
                    self._lose(e)
                continue
            self.buf.finish_batch(len(batch))

    def _insert_each(self, batch: list[Entry]) -> None:
        """A batch with a bad row: write the good ones one by one, reject the bad (a caller bug)."""
        written = rejected = 0
        error: BaseException | None = None
        for i, (_, row) in enumerate(batch):
            try:
                db.insert(self.conn, [as_params(row)])
                written += 1
            except Exception as e:
                if not db.is_row_error(e):
                    self.buf.finish_batch(written, rejected, unwritten=batch[i:])
                    self._lose(e)
                    return
                rejected, error = rejected + 1, e
        self.buf.finish_batch(written, rejected)
        if error is not None:
            log.error("usage_rows_rejected", count=rejected, error=db.describe(error))

    def _retain(self) -> None:
        self._next_retention = time.monotonic() + self.opts.retention_interval
        if self.opts.retention_days is None or self.conn is None:
            return
        cutoff = time.time() - self.opts.retention_days * 86400
        try:
            deleted = db.prune(self.conn, cutoff)
        except Exception as e:
            self._lose(e)
            return
        if deleted:
            log.info("usage_retention", deleted=deleted, retention_days=self.opts.retention_days)

    def _finish(self) -> None:
        lost = self.buf.abandon()
        if lost:
            log.error("usage_rows_lost", count=lost, path=str(self.db_path), error=self.last_error)
        if self.conn is not None:
            self.conn.close()
        self.conn, self.available = None, False
