"""ResponseStore: stored Responses API answers (`store: true`) for GET/DELETE /v1/responses/{id}
and `previous_response_id`, in their own SQLite file beside the usage database.

Each row is one response: its id, the key that made it (a key reads and deletes only its own),
the Response object JSON, and the whole conversation as input items (everything the request's
input expanded to, then the answer's output items), so a follow-up needs one lookup, not a chain.
Bounded twice: rows older than `retention_days` and rows beyond the newest `max_rows` are pruned
after writes. One thread owns the one connection, and calls run in the order they were made, so a
response put before the client saw the end of its stream is there for the client's next request.
Bodies are kept as the JSON bytes the client got; nothing here reads or logs their content.

With shared state (Redis, set by the app as `shared`) each response is also written there as it is
stored here, for `retention_days`, so a follow-up (`previous_response_id`) or a GET that reaches
another instance finds it. The team's copy is asked first: a delete on any instance leaves a
tombstone there, so no instance serves its own copy after it; a response Redis never had (stored
while it was unreachable) is found here.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..errors import GatewayError
from . import db

T = TypeVar("T")
RESPONSES_DB = "responses.db"
_PRUNE_EVERY = 100  # writes between two prunes (and the first write prunes)

_SCHEMA: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            key_name TEXT NOT NULL,
            created_at REAL NOT NULL,
            response BLOB NOT NULL,
            items BLOB NOT NULL
        )""",
        "CREATE INDEX responses_created ON responses(created_at)",
    ),
)


class ResponseStoreUnavailable(GatewayError):
    status = 503
    type = "service_unavailable_error"
    code = "response_store_unavailable"


def responses_db_file(usage_path: str | os.PathLike[str]) -> Path:
    """Beside the usage database: `<dir>/responses.db`, or `<name>.responses.db` next to a .db file."""
    p = Path(usage_path).expanduser()
    if p.suffix in (".db", ".sqlite", ".sqlite3"):
        return p.with_name(f"{p.stem}.{RESPONSES_DB}")
    return p / RESPONSES_DB


class ResponseStore:
    def __init__(self, path: str | os.PathLike[str], *, retention_days: float = 30.0, max_rows: int = 10_000,
                 busy_timeout: float = 2.0) -> None:
        self.db_path = Path(path)
        self.retention_days = retention_days
        self.max_rows = max_rows
        self._busy_timeout = busy_timeout
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="litegate-responses")
        self._conn: sqlite3.Connection | None = None  # touched only on the store's thread
        self._writes = 0
        self._closed = False
        self.shared: Any = None  # a state backend (get/put/delete of bytes), or None
        self._sharing: set[asyncio.Task] = set()

    async def put(self, key: str, response_id: str, created_at: float, response: bytes, items: bytes) -> None:
        await asyncio.wrap_future(self.submit_put(key, response_id, created_at, response, items))

    def submit_put(self, key: str, response_id: str, created_at: float, response: bytes, items: bytes) -> Future:
        """Queue a write now (its place in line is taken at once) and return its future."""
        fut = self._submit(self._put, key, response_id, created_at, response, items)
        ttl = created_at + self.retention_days * 86400 - time.time()
        if self.shared is not None and ttl > 0:  # sent at once too: there before the client can ask another instance
            task = asyncio.get_running_loop().create_task(self.shared.put(
                "response", _shared_name(key, response_id), len(response).to_bytes(4, "big") + response + items, ttl))
            self._sharing.add(task)
            task.add_done_callback(self._sharing.discard)
        return fut

    async def get(self, key: str, response_id: str) -> tuple[bytes, bytes] | None:
        """(Response JSON, conversation items JSON) of this key's response, or None."""
        if self.shared is not None:
            raw = await self.shared.get("response", _shared_name(key, response_id))
            if raw is not None:
                if len(raw) < 4:  # a tombstone: deleted on some instance
                    return None
                n = int.from_bytes(raw[:4], "big")
                return raw[4:4 + n], raw[4 + n:]
        return await asyncio.wrap_future(self._submit(self._get, key, response_id))

    async def delete(self, key: str, response_id: str) -> bool:
        there = False
        if self.shared is not None:
            name = _shared_name(key, response_id)
            raw = await self.shared.get("response", name)
            there = raw is not None and len(raw) >= 4
            await self.shared.put("response", name, b"", self.retention_days * 86400)
        here = await asyncio.wrap_future(self._submit(self._delete, key, response_id))
        return here or there

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sharing:
            await asyncio.gather(*self._sharing, return_exceptions=True)
        await asyncio.wrap_future(self._pool.submit(self._disconnect))
        self._pool.shutdown(wait=False)

    # ------------------------------------------------------------ on the store's thread
    def _submit(self, fn: Callable[..., T], *args: Any) -> Future:
        if self._closed:
            raise ResponseStoreUnavailable("the response store is closed")
        return self._pool.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if self._conn is None:  # a corrupt file is moved aside (as the usage database's is) and started afresh
                self._conn = db.open_db(self.db_path, self._busy_timeout, steps=_SCHEMA)[0]
            return fn(self._conn, *args)
        except sqlite3.Error as e:
            self._disconnect()
            raise ResponseStoreUnavailable(f"response store: {db.describe(e)}") from e

    def _put(self, conn: sqlite3.Connection, key: str, response_id: str, created_at: float, response: bytes,
             items: bytes) -> None:
        conn.execute("INSERT OR REPLACE INTO responses (id, key_name, created_at, response, items) VALUES (?,?,?,?,?)",
                     (response_id, key, created_at, response, items))
        if self._writes % _PRUNE_EVERY == 0:
            self._prune(conn)
        self._writes += 1

    def _prune(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM responses WHERE created_at < ?", (time.time() - self.retention_days * 86400,))
        conn.execute("DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY created_at DESC "
                     "LIMIT -1 OFFSET ?)", (self.max_rows,))

    def _get(self, conn: sqlite3.Connection, key: str, response_id: str) -> tuple[bytes, bytes] | None:
        row = conn.execute("SELECT response, items, created_at FROM responses WHERE id = ? AND key_name = ?",
                           (response_id, key)).fetchone()
        if row is None or row[2] < time.time() - self.retention_days * 86400:
            return None
        return bytes(row[0]), bytes(row[1])

    def _delete(self, conn: sqlite3.Connection, key: str, response_id: str) -> bool:
        return conn.execute("DELETE FROM responses WHERE id = ? AND key_name = ?", (response_id, key)).rowcount > 0

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _shared_name(key: str, response_id: str) -> str:
    """The team's name for a key's response: the key is part of it, so a key reads only its own."""
    return f"{len(key)}:{key}:{response_id}"
