"""litegate.usage.responses: the bounded SQLite store behind `store: true`, GET/DELETE
/v1/responses/{id} and previous_response_id."""

from __future__ import annotations

import time

from litegate.usage.responses import ResponseStore, responses_db_file


async def test_a_key_reads_and_deletes_only_its_own(tmp_path):
    """get/delete by another key find nothing; the owner gets back exactly what was put."""
    store = ResponseStore(tmp_path / "responses.db")
    try:
        await store.put("laptop", "resp_1", time.time(), b'{"id":"resp_1"}', b"[1]")
        assert await store.get("laptop", "resp_1") == (b'{"id":"resp_1"}', b"[1]")
        assert await store.get("phone", "resp_1") is None
        assert await store.delete("phone", "resp_1") is False
        assert await store.delete("laptop", "resp_1") is True
        assert await store.get("laptop", "resp_1") is None
    finally:
        await store.close()


async def test_a_queued_put_is_seen_by_the_next_read(tmp_path):
    """submit_put takes its place in line at once: a read queued after it sees the row (no await between)."""
    store = ResponseStore(tmp_path / "r.db")
    try:
        store.submit_put("k", "resp_a", time.time(), b"{}", b"[]")
        assert await store.get("k", "resp_a") == (b"{}", b"[]")
    finally:
        await store.close()


async def test_rows_beyond_max_rows_are_pruned(tmp_path):
    """The store stays bounded: after the periodic prune only the newest max_rows remain."""
    store = ResponseStore(tmp_path / "r.db", max_rows=3)
    try:
        now = time.time()
        for i in range(101):  # the first write and the 101st prune
            store.submit_put("k", f"resp_{i}", now + i, b"{}", b"[]")
        assert await store.get("k", "resp_100") is not None
        assert await store.get("k", "resp_98") is not None
        assert await store.get("k", "resp_97") is None
    finally:
        await store.close()


async def test_expired_rows_are_not_returned(tmp_path):
    """A response older than retention_days is gone for readers even before the next prune."""
    store = ResponseStore(tmp_path / "r.db", retention_days=1)
    try:
        store.submit_put("k", "fresh", time.time(), b"{}", b"[]")  # first write: prunes (nothing old yet)
        await store.put("k", "old", time.time() - 2 * 86400, b"{}", b"[]")
        assert await store.get("k", "old") is None
        assert await store.get("k", "fresh") is not None
    finally:
        await store.close()


def test_the_file_sits_beside_the_usage_database(tmp_path):
    """A usage data dir gets responses.db inside; a usage .db file gets a sibling <stem>.responses.db."""
    assert responses_db_file(tmp_path) == tmp_path / "responses.db"
    assert responses_db_file(tmp_path / "usage.db") == tmp_path / "usage.responses.db"


async def test_a_corrupt_file_is_moved_aside_and_started_afresh(tmp_path):
    """Garbage where the responses database should be: it is renamed <name>.corrupt-<stamp> and a
    fresh store takes its place (the same rule as the usage database), so puts and gets keep working."""
    path = tmp_path / "r.db"
    path.write_bytes(b"not a database at all" * 200)
    store = ResponseStore(path)
    try:
        await store.put("k", "resp_1", time.time(), b"{}", b"[]")
        assert await store.get("k", "resp_1") == (b"{}", b"[]")
        assert [p.name.split(".corrupt-")[0] for p in tmp_path.glob("r.db.corrupt-*")] == ["r.db"]
    finally:
        await store.close()
