"""Usage accounting: one SQLite row per request, written off the event loop, never lost on SIGTERM.

Owns the usage database (WAL, synchronous=NORMAL) under a data dir: the migrations list, one
writer thread with batched inserts, retention, and the dashboard/admin/CLI queries. The rest of
the app sees only this:

    store = UsageStore(platformdirs.user_data_dir("litegate"))   # or a configured dir / *.db path
    await store.start()                  # False: DB unusable now; rows buffer, the writer retries
    store.record(UsageRow(...))          # enqueue only
    await store.totals(since, until, group_by="model")
    await store.close()                  # drains every pending row, then stops the threads

Guarantees and choices:
- record() appends to a bounded buffer (buffer_limit rows; beyond it the oldest is dropped and
  counted in stats()["rows_dropped"]). The writer flushes every flush_interval or batch_size rows.
- A corrupt file is moved aside to `<name>.corrupt-<UTC stamp>` and a fresh database started
  (db.py). A locked file, an unwritable dir, or a newer schema is left alone: the store logs
  usage_store_unavailable once, buffers, and retries every retry_interval (and at once on flush()
  or close()); usage_store_recovered follows when writes work again.
- Reads go through UsageStore.query(fn, *args): a single reader thread with its own query-only
  connection. Before the first successful open, or after close(), reads raise UsageUnavailable (503).
"""

from litegate.usage.db import MIGRATIONS
from litegate.usage.rows import Endpoint, KeySums, Point, Totals, UsageRow
from litegate.usage.store import DB_NAME, UsageStore, UsageUnavailable

__all__ = ["DB_NAME", "MIGRATIONS", "Endpoint", "KeySums", "Point", "Totals", "UsageRow", "UsageStore",
           "UsageUnavailable"]
