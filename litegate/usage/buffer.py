"""The bounded hand-off between the event loop (record, flush, close) and the writer thread.

Every row gets a sequence number when recorded. A flush waits for the lowest sequence still
pending (in the buffer or in the writer's hands) to pass the last one recorded before the call,
so it means "everything I recorded has left memory", written or dropped.
The bound counts buffered rows; when full the oldest is dropped and counted. The writer holds at
most one batch beyond the bound while it writes it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from litegate.usage.rows import UsageRow

Entry = tuple[int, UsageRow]


def resolve(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, value: Any) -> None:
    """Set a loop's future from another thread; a closed loop has nobody waiting any more."""

    def settle() -> None:
        if not fut.done():
            fut.set_result(value)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass


class Buffer:
    def __init__(self, limit: int, batch_size: int) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.limit = max(1, limit)
        self.batch_size = max(1, batch_size)
        self.rows: deque[Entry] = deque()
        self.inflight: list[Entry] = []
        self.next_seq = 0
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.urgent = False
        self.stopping = False
        self.finished = False
        self.waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.closers: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    # ---------------------------------------------------------------- loop side
    def put(self, row: UsageRow) -> None:
        with self.cond:
            if self.stopping:
                self.dropped += 1
                return
            if len(self.rows) >= self.limit:
                self.rows.popleft()
                self.dropped += 1
            self.rows.append((self.next_seq, row))
            self.next_seq += 1
            if len(self.rows) == self.batch_size:
                self.cond.notify()

    def add_waiter(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> bool | None:
        """Register a flush and wake the writer. None: wait for fut. A bool: the answer already
        (True when everything recorded has left memory; False when the writer has exited)."""
        with self.cond:
            target = self.next_seq - 1
            if target < self._low():
                return True
            if self.finished:
                return False
            self.waiters.append((target, loop, fut))
            self.urgent = True
            self.cond.notify()
            return None

    def remove_waiter(self, fut: asyncio.Future) -> None:
        with self.cond:
            self.waiters = [w for w in self.waiters if w[2] is not fut]

    def stop(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> bool:
        """Refuse new rows and ask the writer to drain and exit; False if it already has."""
        with self.cond:
            self.stopping = True
            if self.finished:
                return False
            self.closers.append((loop, fut))
            self.cond.notify()
            return True

    def pending(self) -> int:
        with self.cond:
            return len(self.rows) + len(self.inflight)

    def counts(self) -> dict[str, int]:
        with self.cond:
            return {"rows_written": self.written, "rows_pending": len(self.rows) + len(self.inflight),
                    "rows_dropped": self.dropped, "rows_rejected": self.rejected}

    # ---------------------------------------------------------------- writer side
    def wait(self, timeout: float, ready: bool) -> tuple[bool, bool]:
        """Sleep until a full batch (only if the writer can write), a flush, a stop or the timeout.

        Returns (stopping, urgent) and clears urgent.
        """
        with self.cond:
            if not (self.stopping or self.urgent or (ready and len(self.rows) >= self.batch_size)):
                self.cond.wait(timeout)
            urgent, self.urgent = self.urgent, False
            return self.stopping, urgent

    def take(self) -> list[Entry]:
        with self.cond:
            n = min(self.batch_size, len(self.rows))
            self.inflight = [self.rows.popleft() for _ in range(n)]
            return self.inflight

    def finish_batch(self, written: int, rejected: int = 0, unwritten: list[Entry] | None = None) -> None:
        """The writer is done with its batch; rows it could not write go back to the front."""
        with self.cond:
            self.written += written
            self.rejected += rejected
            self.inflight = []
            if unwritten:
                self.rows.extendleft(reversed(unwritten))
                while len(self.rows) > self.limit:
                    self.rows.popleft()
                    self.dropped += 1

    def settle(self) -> None:
        """Resolve the flushes whose rows have all left memory."""
        with self.cond:
            low = self._low()
            done = [w for w in self.waiters if w[0] < low]
            self.waiters = [w for w in self.waiters if w[0] >= low]
        for _, loop, fut in done:
            resolve(loop, fut, True)

    def abandon(self) -> int:
        """The writer is exiting: count what is left as dropped, answer every flush and close."""
        with self.cond:
            self.stopping = self.finished = True
            lost = len(self.rows) + len(self.inflight)
            self.dropped += lost
            self.rows.clear()
            self.inflight = []
            waiters, self.waiters = self.waiters, []
            closers, self.closers = self.closers, []
        for _, loop, fut in waiters:
            resolve(loop, fut, lost == 0)
        for loop, fut in closers:
            resolve(loop, fut, lost == 0)
        return lost

    def _low(self) -> int:
        if self.inflight:
            return self.inflight[0][0]
        if self.rows:
            return self.rows[0][0]
        return self.next_seq
