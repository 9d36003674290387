"""Usage store: rows land exactly and are never lost on close, SQLite stays off the loop,
migrations upgrade old files, retention prunes, corrupt/locked files degrade to buffering, and the
dashboard queries group, sum and rank correctly."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing

import pytest
from structlog.testing import capture_logs

from litegate.usage import MIGRATIONS, UsageRow, UsageStore, UsageUnavailable, db, queries
from litegate.usage.store import db_file

DAY = 86400.0
NOW = time.time()


def row(i: int = 0, **kw) -> UsageRow:
    fields = dict(time=NOW, request_id=f"req-{i}", key="alice", model="llama", deployment="llama-local",
                  route="direct", endpoint="chat", status=200, prompt_tokens=10, completion_tokens=5,
                  latency_ms=100.0)
    fields.update(kw)
    return UsageRow(**fields)


@pytest.fixture
async def make(tmp_path) -> Callable[..., UsageStore]:
    """A UsageStore factory over tmp_path with fast timeouts; every store is closed at teardown."""
    stores: list[UsageStore] = []

    def factory(**kw) -> UsageStore:
        kw.setdefault("busy_timeout", 0.05)
        kw.setdefault("retry_interval", 60.0)  # retries in these tests come from flush(), not the clock
        store = UsageStore(tmp_path, **kw)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close(timeout=5)


def raw(store: UsageStore) -> sqlite3.Connection:
    return sqlite3.connect(store.db_path)


def count(store: UsageStore) -> int:
    with closing(raw(store)) as conn:
        return conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == name]


# ---------------------------------------------------------------- writing
async def test_rows_round_trip_exactly(make):
    """Every field written comes back identical, including None, bool and float values."""
    store = make()
    assert await store.start()
    rows = [row(0), row(1, time=NOW + 1.25, key="bob", model="gpt", deployment=None, route=None,
                       endpoint="embeddings", status=502, error_code="backend_unavailable", prompt_tokens=0,
                       completion_tokens=0, cached_tokens=3, cost=0.000123, latency_ms=12.5, ttft_ms=None,
                       server_tool_calls=2, stream=True),
            row(2, time=NOW + 2, ttft_ms=33.3, stream=False, endpoint="completions")]
    for r in rows:
        store.record(r)
    assert await store.flush()
    assert await store.query(queries.rows, 0) == rows
    assert store.stats()["rows_written"] == 3


async def test_concurrent_record_from_threads_and_tasks(make):
    """record() from many threads and tasks at once loses and duplicates nothing."""
    store = make(batch_size=64)
    assert await store.start()

    def producer(t: int) -> None:
        for i in range(1000):
            store.record(row(t * 100_000 + i))

    async def task(t: int) -> None:
        for i in range(10):
            store.record(row(10_000_000 + t * 100 + i))
            await asyncio.sleep(0)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    await asyncio.gather(*(task(t) for t in range(100)))
    await asyncio.get_running_loop().run_in_executor(None, lambda: [th.join() for th in threads])
    assert await store.flush()
    ids = [r.request_id for r in await store.query(queries.rows, 0)]
    assert len(ids) == len(set(ids)) == 8 * 1000 + 100 * 10
    assert store.stats()["rows_dropped"] == 0


async def test_close_writes_everything_pending(make):
    """close() drains the buffer before the writer exits: the count on disk equals the records."""
    store = make(flush_interval=3600, batch_size=1_000_000)
    assert await store.start()
    for i in range(5000):
        store.record(row(i))
    assert store.stats()["rows_written"] == 0  # nothing flushed on its own: close() must do it
    assert await store.close()
    assert count(store) == 5000
    assert store.stats()["rows_pending"] == 0


async def test_record_after_close_is_counted_not_raised(make):
    """A row recorded after close() is counted as dropped; record never raises."""
    store = make()
    await store.start()
    await store.close()
    store.record(row(1))
    assert store.stats()["rows_dropped"] == 1
    assert await store.close()  # twice is fine


async def test_rows_recorded_before_start_are_written(make):
    """Rows recorded before start() wait in memory; flush() cannot write them yet, start() does."""
    store = make()
    assert await store.flush()  # nothing recorded
    store.record(row(1))
    assert not await store.flush()
    assert await store.start()
    assert await store.flush()
    assert count(store) == 1


async def test_bad_rows_are_rejected_alone(make):
    """A malformed row (a caller bug) is rejected and logged without contents; its batch-mates land."""
    store = make()
    await store.start()
    with capture_logs() as logs:
        store.record(row(1))
        store.record(row(2, model=None, request_id="secret-request"))  # NOT NULL column
        store.record({"not": "a row"})  # type: ignore[arg-type]
        store.record(row(3))
        assert await store.flush()
    assert [r.request_id for r in await store.query(queries.rows, 0)] == ["req-1", "req-3"]
    assert store.stats()["rows_rejected"] == 2
    assert len(events(logs, "usage_rows_rejected")) == 1
    assert "secret-request" not in repr(logs)
    assert store.available


async def test_sqlite_never_runs_on_the_loop_thread(make, monkeypatch):
    """Every connection is opened (and so used) on the writer or reader thread, never the loop's."""
    opened_on: list[str] = []
    real = sqlite3.connect

    def spy(*a, **kw):
        opened_on.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(sqlite3, "connect", spy)
    store = make()
    await store.start()
    store.record(row(1))
    await store.flush()
    await store.totals(0)
    await store.close()
    loop_thread = threading.current_thread().name
    assert opened_on and loop_thread not in opened_on
    assert {n.split("_")[0] for n in opened_on} == {"litegate-usage-writer", "litegate-usage-read"}


def test_db_file_names_a_dir_or_a_file(tmp_path):
    """A data dir gets usage.db inside it; a path ending in .db/.sqlite names the file itself."""
    assert db_file(tmp_path) == tmp_path / "usage.db"
    assert db_file(tmp_path / "x" / "my.sqlite") == tmp_path / "x" / "my.sqlite"


# ---------------------------------------------------------------- schema
@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
async def test_old_database_is_migrated(make, tmp_path, version):
    """A file at any older schema version is upgraded in place, keeping its rows."""
    path = tmp_path / "usage.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        db.migrate(conn, MIGRATIONS[:version])
        if version >= 1:
            conn.execute("INSERT INTO usage (ts, request_id, key_name, model, endpoint, status) "
                         "VALUES (?, 'old', 'alice', 'llama', 'chat', 200)", (NOW,))
    conn.close()
    store = make()
    assert await store.start()
    with closing(raw(store)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"usage_ts", "usage_errors_ts"} <= indexes
    assert [r.request_id for r in await store.query(queries.rows, 0)] == (["old"] if version else [])


def test_failed_migration_step_keeps_last_good_version(tmp_path):
    """A step that fails rolls back whole: the file stays at the version before it."""
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn, MIGRATIONS + (("CREATE TABLE extra (x)", "NOT SQL AT ALL"),))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'extra'").fetchone()[0] == 0
    conn.close()


async def test_newer_schema_is_left_alone(make, tmp_path):
    """A file from a newer litegate is neither migrated nor moved: the store reports it unavailable."""
    path = tmp_path / "usage.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    store = make()
    with capture_logs() as logs:
        assert not await store.start()
    assert "newer" in events(logs, "usage_store_unavailable")[0]["error"]
    assert list(tmp_path.glob("*.corrupt-*")) == []
    with closing(raw(store)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    with pytest.raises(UsageUnavailable):
        await store.totals(0)


async def test_dashboard_queries_use_their_indexes(make):
    """recent_errors walks the partial errors index; range queries use the time index."""
    store = make()
    await store.start()
    store.record(row(1))
    await store.flush()
    conn = raw(store)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    queries.recent_errors(conn, 5)
    queries.sums_by_key_since(conn, NOW - 10)
    conn.set_trace_callback(None)
    plans = [" ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + s)) for s in statements]
    conn.close()
    assert "usage_errors_ts" in plans[0]
    assert "usage_ts" in plans[1]


# ---------------------------------------------------------------- retention
async def test_retention_runs_at_start(make):
    """Rows older than retention_days are deleted when the store opens."""
    seed = make(retention_days=None)
    await seed.start()
    seed.record(row(1, time=NOW - 91 * DAY))
    seed.record(row(2, time=NOW - 89 * DAY))
    await seed.close()
    assert count(seed) == 2
    store = make(retention_days=90)
    with capture_logs() as logs:
        await store.start()
    assert [r.request_id for r in await store.query(queries.rows, 0)] == ["req-2"]
    assert events(logs, "usage_retention")[0]["deleted"] == 1


async def test_retention_runs_periodically(make):
    """While running, retention repeats every retention_interval (daily by default)."""
    store = make(retention_days=1, retention_interval=0.0)
    await store.start()
    store.record(row(1, time=NOW - 2 * DAY))
    store.record(row(2))
    await store.flush()
    assert [r.request_id for r in await store.query(queries.rows, 0)] == ["req-2"]


# ---------------------------------------------------------------- a bad database
async def test_corrupt_file_is_moved_aside_and_replaced(make, tmp_path):
    """Garbage at the path: it is renamed <name>.corrupt-<stamp>, a fresh DB takes its place, and
    rows keep landing; one usage_store_corrupt event, no outage."""
    garbage = b"this is not an sqlite file " * 200
    (tmp_path / "usage.db").write_bytes(garbage)
    store = make()
    with capture_logs() as logs:
        assert await store.start()
        store.record(row(1))
        assert await store.flush()
    moved = list(tmp_path.glob("usage.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage
    assert [e["moved_to"] for e in events(logs, "usage_store_corrupt")] == [str(moved[0])]
    assert events(logs, "usage_store_unavailable") == []
    assert count(store) == 1


async def test_corrupt_file_that_cannot_be_moved_buffers_until_it_can(make, tmp_path, monkeypatch):
    """If the corrupt file cannot be moved aside, rows buffer up to the bound (oldest dropped),
    one outage is logged however often it retries, and the rows land once it can be moved."""
    (tmp_path / "usage.db").write_bytes(b"garbage" * 500)
    real_move = db.move_aside
    stuck = True

    def move_aside(path):
        if stuck:
            raise PermissionError(13, "Permission denied", str(path))
        return real_move(path)

    monkeypatch.setattr(db, "move_aside", move_aside)
    store = make(buffer_limit=10)
    with capture_logs() as logs:
        assert not await store.start()
        for i in range(15):
            store.record(row(i))
        for _ in range(3):
            assert not await store.flush(timeout=0.2)
        assert store.stats()["rows_pending"] == 10 and store.stats()["rows_dropped"] == 5
        stuck = False
        assert await store.flush(timeout=5)
    assert len(events(logs, "usage_store_unavailable")) == 1
    assert len(events(logs, "usage_buffer_full")) == 1
    assert events(logs, "usage_store_recovered")[0]["dropped"] == 5
    assert [r.request_id for r in await store.query(queries.rows, 0)] == [f"req-{i}" for i in range(5, 15)]


async def test_locked_at_start_buffers_then_writes(make, tmp_path):
    """Another program holding an exclusive lock: start() returns False without raising, rows
    buffer up to the bound, the outage is logged once, and everything buffered lands after release."""
    holder = sqlite3.connect(tmp_path / "usage.db", isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO other VALUES (1)")
    store = make(buffer_limit=10)
    with capture_logs() as logs:
        assert not await store.start()
        for i in range(15):
            store.record(row(i))
        for _ in range(3):
            assert not await store.flush(timeout=0.2)
        with pytest.raises(UsageUnavailable):
            await store.totals(0)
        assert store.stats()["last_error"] and "locked" in store.stats()["last_error"]
        holder.execute("ROLLBACK")
        holder.close()
        assert await store.flush(timeout=5)
    unavailable = events(logs, "usage_store_unavailable")
    assert len(unavailable) == 1 and "locked" in unavailable[0]["error"]
    assert "req-" not in repr(unavailable)
    assert [r.request_id for r in await store.query(queries.rows, 0)] == [f"req-{i}" for i in range(5, 15)]
    assert store.stats()["rows_dropped"] == 5 and store.available


async def test_locked_while_running_buffers_then_writes(make, tmp_path):
    """A write lock taken mid-run: the batch goes back to the buffer, nothing is lost or doubled."""
    store = make()
    assert await store.start()
    store.record(row(0))
    assert await store.flush()
    holder = sqlite3.connect(store.db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with capture_logs() as logs:
        for i in range(1, 50):
            store.record(row(i))
        assert not await store.flush(timeout=0.2)
        assert not await store.flush(timeout=0.2)
        holder.execute("ROLLBACK")
        holder.close()
        assert await store.flush(timeout=5)
    assert len(events(logs, "usage_store_unavailable")) == 1
    assert len(events(logs, "usage_store_recovered")) == 1
    ids = [r.request_id for r in await store.query(queries.rows, 0)]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(50))


async def test_close_while_locked_reports_the_loss(make, tmp_path):
    """If the database is still unusable at close, close() returns False and logs how many rows were lost."""
    store = make()
    await store.start()
    holder = sqlite3.connect(store.db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with capture_logs() as logs:
        for i in range(7):
            store.record(row(i))
        assert not await store.close(timeout=5)
    holder.execute("ROLLBACK")
    holder.close()
    assert events(logs, "usage_rows_lost")[0]["count"] == 7
    assert store.stats()["rows_dropped"] == 7


# ---------------------------------------------------------------- queries
def dataset() -> list[UsageRow]:
    day0 = (NOW // DAY - 3) * DAY  # midnight UTC, three days ago
    return [
        row(1, time=day0 + 3600, key="alice", model="llama", deployment="d1", prompt_tokens=100,
            completion_tokens=10, cached_tokens=50, cost=0.5, latency_ms=100, ttft_ms=10, server_tool_calls=1),
        row(2, time=day0 + 3700, key="alice", model="gpt", deployment="d2", prompt_tokens=200,
            completion_tokens=20, cost=0.25, latency_ms=200, status=500, error_code="upstream_error"),
        row(3, time=day0 + 7300, key="bob", model="llama", deployment="d1", prompt_tokens=300,
            completion_tokens=30, cost=0.125, latency_ms=300, ttft_ms=30, error_code="stream_interrupted"),
        row(4, time=day0 + DAY + 60, key="bob", model="llama", deployment=None, prompt_tokens=0,
            completion_tokens=0, cost=0.0, latency_ms=5, status=404, error_code="model_not_found"),
        row(5, time=day0 + DAY + 120, key="alice", model="gpt", deployment="d2", prompt_tokens=1,
            completion_tokens=2, cached_tokens=1, cost=1.0, latency_ms=400, ttft_ms=40, server_tool_calls=3),
    ]


@pytest.fixture
async def loaded(make):
    store = make()
    await store.start()
    for r in dataset():
        store.record(r)
    assert await store.flush()
    return store


async def test_totals_group_and_sum(loaded):
    """totals sums requests, tokens, cost, errors and tool calls per key, model and deployment."""
    by_key = {t.group: t for t in await loaded.totals(0, None, "key")}
    assert (by_key["alice"].requests, by_key["alice"].prompt_tokens, by_key["alice"].completion_tokens,
            by_key["alice"].cached_tokens, by_key["alice"].cost, by_key["alice"].errors,
            by_key["alice"].server_tool_calls) == (3, 301, 32, 51, 1.75, 1, 4)
    assert (by_key["bob"].requests, by_key["bob"].cost, by_key["bob"].errors) == (2, 0.125, 2)
    by_model = {t.group: (t.requests, t.cost) for t in await loaded.totals(0, None, "model")}
    assert by_model == {"llama": (3, 0.625), "gpt": (2, 1.25)}
    by_dep = {t.group: t.requests for t in await loaded.totals(0, None, "deployment")}
    assert by_dep == {"d1": 2, "d2": 2, None: 1}
    [overall] = await loaded.totals(0)
    assert (overall.group, overall.requests, overall.cost, overall.errors) == (None, 5, 1.875, 3)


async def test_totals_by_day_and_hour_and_range(loaded):
    """day/hour groups are bucket starts (UTC, or shifted by utc_offset_s); since is inclusive, until exclusive."""
    rows = dataset()
    day0 = (NOW // DAY - 3) * DAY
    by_day = [(t.group, t.requests) for t in await loaded.totals(0, None, "day")]
    assert by_day == [(int(day0), 3), (int(day0 + DAY), 2)]
    by_hour = [(t.group, t.requests) for t in await loaded.totals(day0, day0 + DAY, "hour")]
    assert by_hour == [(int(day0 + 3600), 2), (int(day0 + 7200), 1)]
    shifted = [(t.group, t.requests) for t in await loaded.totals(0, None, "day", utc_offset_s=-2 * 3600)]
    assert shifted == [(int(day0 - DAY + 2 * 3600), 2), (int(day0 + 2 * 3600), 3)]
    [window] = await loaded.totals(rows[1].time, rows[3].time)
    assert window.requests == 2  # rows 2 and 3: since included, until excluded


async def test_timeseries_buckets_and_splits(loaded):
    """timeseries buckets by bucket_s and splits one series per model or key; empty buckets are absent."""
    day0 = int((NOW // DAY - 3) * DAY)
    flat = [(p.t, p.series, p.requests) for p in await loaded.timeseries(0, None, 86400)]
    assert flat == [(day0, None, 3), (day0 + 86400, None, 2)]
    split = [(p.t, p.series, p.requests, p.cost) for p in await loaded.timeseries(0, None, 86400, "model")]
    assert split == [(day0, "gpt", 1, 0.25), (day0, "llama", 2, 0.625),
                     (day0 + 86400, "gpt", 1, 1.0), (day0 + 86400, "llama", 1, 0.0)]
    hourly = await loaded.timeseries(0, None, 3600, "key")
    assert [(p.t - day0, p.series, p.requests) for p in hourly] == [
        (3600, "alice", 2), (7200, "bob", 1), (86400, "alice", 1), (86400, "bob", 1)]
    assert hourly[0].latency_avg_ms == 150.0


async def test_recent_errors_and_sums_by_key(loaded):
    """recent_errors returns failed rows newest first (mid-stream errors included); sums_by_key_since
    restores per-key requests, tokens and cost."""
    errors = await loaded.recent_errors(2)
    assert [r.request_id for r in errors] == ["req-4", "req-3"]
    assert [r.request_id for r in await loaded.recent_errors(10)] == ["req-4", "req-3", "req-2"]
    sums = await loaded.sums_by_key_since(dataset()[2].time)
    assert set(sums) == {"alice", "bob"}
    assert (sums["bob"].requests, sums["bob"].tokens, sums["bob"].cost) == (2, 330, 0.125)
    assert (sums["alice"].requests, sums["alice"].prompt_tokens, sums["alice"].cost) == (1, 1, 1.0)


async def test_bad_group_is_a_bad_request(loaded):
    """An unknown group_by / split_by is a 400-class error, never SQL built from input."""
    from litegate.errors import BadRequest

    with pytest.raises(BadRequest):
        await loaded.totals(0, None, "key_name; DROP TABLE usage")
    with pytest.raises(BadRequest):
        await loaded.timeseries(0, None, 60, "day")
    with pytest.raises(BadRequest):
        await loaded.timeseries(0, None, 0)


async def test_percentiles_are_nearest_rank(make):
    """p50/p95 are nearest-rank over each group; ttft ignores rows without one; a lone row is its own
    percentile; an empty range has none."""
    store = make()
    await store.start()
    latencies = list(range(1, 101))
    random.Random(7).shuffle(latencies)
    for i, lat in enumerate(latencies):
        store.record(row(i, model="big", latency_ms=float(lat), ttft_ms=float(lat) / 10 if lat % 10 == 0 else None))
    store.record(row(1000, model="lone", latency_ms=42.0, ttft_ms=7.0))
    assert await store.flush()
    by_model = {t.group: t for t in await store.totals(0, None, "model")}
    big, lone = by_model["big"], by_model["lone"]
    assert (big.latency_p50_ms, big.latency_p95_ms) == (50.0, 95.0)
    assert (big.ttft_p50_ms, big.ttft_p95_ms) == (5.0, 10.0)  # ttfts 1..10: ranks 5 and 10
    assert (lone.latency_p50_ms, lone.latency_p95_ms, lone.ttft_p50_ms, lone.ttft_p95_ms) == (42.0, 42.0, 7.0, 7.0)
    [empty] = await store.totals(NOW + DAY)
    assert (empty.requests, empty.cost, empty.latency_p50_ms, empty.ttft_p95_ms) == (0, 0.0, None, None)


async def test_stats_report_counters_and_path(loaded):
    """stats() gives what metrics and /health need."""
    s = loaded.stats()
    assert s == {"rows_written": 5, "rows_pending": 0, "rows_dropped": 0, "rows_rejected": 0,
                 "available": True, "last_error": None, "db_path": str(loaded.db_path)}
