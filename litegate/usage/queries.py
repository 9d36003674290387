"""Read-only queries for the dashboard, the admin API and the CLI.

Each is a plain function of a connection, run by UsageStore.query on its reader thread. Ranges are
[since, until) in unix seconds; until=None means "up to now and beyond". Day and hour buckets are
UTC unless a utc_offset_s shifts them to a local day. Group names and bucket sizes come from fixed
tables or are validated ints: nothing a caller passes is pasted into SQL. A bad group or bucket is
errors.BadRequest, so the admin API answers 400.
"""

from __future__ import annotations

import sqlite3

from litegate.errors import BadRequest
from litegate.usage.rows import COLUMNS, KeySums, Point, Totals, UsageRow, from_db

GROUPS: dict[str, str | int] = {"key": "key_name", "model": "model", "deployment": "deployment",
                                "face": "face", "day": 86400, "hour": 3600}
SPLITS: dict[str | None, str] = {None: "NULL", "model": "model", "key": "key_name"}
IS_ERROR = "(status >= 400 OR error_code IS NOT NULL)"  # the partial index usage_errors_ts uses this text
_INF = float("inf")


def _bucket(bucket_s: int, utc_offset_s: int) -> str:
    b, off = int(bucket_s), int(utc_offset_s)
    if b <= 0:
        raise BadRequest("bucket_s must be a positive number of seconds", param="bucket_s")
    return f"(CAST((ts + {off}) / {b} AS INTEGER) * {b} - {off})"


def _group(group_by: str | None, utc_offset_s: int) -> str:
    if group_by is None:
        return "NULL"
    if group_by not in GROUPS:
        raise BadRequest(f"group_by must be one of {sorted(GROUPS)}", param="group_by")
    col = GROUPS[group_by]
    return _bucket(col, utc_offset_s) if isinstance(col, int) else col


def totals(conn: sqlite3.Connection, since: float, until: float | None = None, group_by: str | None = None,
           utc_offset_s: int = 0) -> list[Totals]:
    """Sums and latency/ttft percentiles per group (one overall row when group_by is None)."""
    g = _group(group_by, utc_offset_s)
    rng = (since, _INF if until is None else until)
    sums = conn.execute(
        f"""SELECT {g} AS g, COUNT(*), COALESCE(SUM({IS_ERROR}), 0), COALESCE(SUM(prompt_tokens), 0),
                   COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0), TOTAL(cost),
                   COALESCE(SUM(server_tool_calls), 0)
            FROM usage WHERE ts >= ? AND ts < ? {'GROUP BY g ORDER BY g' if group_by else ''}""", rng).fetchall()
    latency = _percentiles(conn, g, "latency_ms", rng)
    ttft = _percentiles(conn, g, "ttft_ms", rng)
    return [Totals(row[0], *row[1:], *latency.get(row[0], (None, None)), *ttft.get(row[0], (None, None)))
            for row in sums]


def _percentiles(conn: sqlite3.Connection, g: str, col: str, rng: tuple) -> dict:
    """Nearest-rank p50 and p95 of a column per group: rank = ceil(p * n), in integer arithmetic."""
    if col not in ("latency_ms", "ttft_ms"):
        raise ValueError(f"no percentiles for {col!r}")
    rows = conn.execute(
        f"""SELECT g, MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN v END),
                      MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN v END)
            FROM (SELECT g, v, ROW_NUMBER() OVER (PARTITION BY g ORDER BY v) AS rn,
                         COUNT(*) OVER (PARTITION BY g) AS n
                  FROM (SELECT {g} AS g, {col} AS v FROM usage WHERE ts >= ? AND ts < ? AND {col} IS NOT NULL))
            GROUP BY g""", rng).fetchall()
    return {g_: (p50, p95) for g_, p50, p95 in rows}


def timeseries(conn: sqlite3.Connection, since: float, until: float | None, bucket_s: int,
               split_by: str | None = None, utc_offset_s: int = 0) -> list[Point]:
    """Per-bucket sums, optionally one series per model or key. Empty buckets are absent."""
    if split_by not in SPLITS:
        raise BadRequest(f"split_by must be one of {[s for s in SPLITS if s]} or None", param="split_by")
    t = _bucket(bucket_s, utc_offset_s)
    rows = conn.execute(
        f"""SELECT {t} AS t, {SPLITS[split_by]} AS s, COUNT(*), COALESCE(SUM({IS_ERROR}), 0),
                   COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
                   COALESCE(SUM(cached_tokens), 0), TOTAL(cost), AVG(latency_ms)
            FROM usage WHERE ts >= ? AND ts < ? GROUP BY t, s ORDER BY t, s""",
        (since, _INF if until is None else until)).fetchall()
    return [Point(*row) for row in rows]


def recent_errors(conn: sqlite3.Connection, limit: int = 50) -> list[UsageRow]:
    """The newest failed requests (status >= 400, or an error code such as a mid-stream failure)."""
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE {IS_ERROR} ORDER BY ts DESC LIMIT ?",
                        (int(limit),)).fetchall()
    return [from_db(r) for r in rows]


def sums_by_key_since(conn: sqlite3.Connection, since: float) -> dict[str, KeySums]:
    """Requests, tokens and cost per key name since a moment (every request counts, failed ones too)."""
    rows = conn.execute(
        """SELECT key_name, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
                  TOTAL(cost)
           FROM usage WHERE ts >= ? GROUP BY key_name""", (since,)).fetchall()
    return {name: KeySums(*sums) for name, *sums in rows}


def rows(conn: sqlite3.Connection, since: float, until: float | None = None, limit: int = -1) -> list[UsageRow]:
    """Rows in time order (for export and tests); limit -1 means all."""
    found = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE ts >= ? AND ts < ? ORDER BY ts, id LIMIT ?",
                         (since, _INF if until is None else until, int(limit))).fetchall()
    return [from_db(r) for r in found]
