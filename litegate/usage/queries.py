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
                                "route": "route", "face": "face", "error_class": "error_class",
                                "day": 86400, "hour": 3600}
SPLITS: dict[str | None, str] = {None: "NULL", "model": "model", "key": "key_name", "deployment": "deployment",
                                 "route": "route", "face": "face", "error_class": "error_class"}
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
                   COALESCE(SUM(server_tool_calls), 0), COALESCE(SUM(error_class = 'backend'), 0),
                   COALESCE(SUM(error_class = 'policy'), 0), COALESCE(SUM(error_class = 'client'), 0)
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
        raise BadRequest(f"split_by must be one of {[s for s in SPLITS if s]}", param="split_by")
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


def latency_series(conn: sqlite3.Connection, since: float, until: float | None, bucket_s: int,
                   utc_offset_s: int = 0) -> list[dict]:
    """Per time bucket: nearest-rank p50/p95 of latency and of time to first token (buckets with rows only)."""
    t = _bucket(bucket_s, utc_offset_s)
    rng = (since, _INF if until is None else until)
    latency = _percentiles(conn, t, "latency_ms", rng)
    ttft = _percentiles(conn, t, "ttft_ms", rng)
    return [{"t": b, "latency_p50_ms": latency[b][0], "latency_p95_ms": latency[b][1],
             "ttft_p50_ms": ttft.get(b, (None, None))[0], "ttft_p95_ms": ttft.get(b, (None, None))[1]}
            for b in sorted(latency)]


def speed(conn: sqlite3.Connection, since: float, until: float | None = None) -> list[dict]:
    """Generation speed per deployment: completion tokens per second of generating (the time after the first
    token when it is known), over successful requests that produced tokens."""
    rows = conn.execute(
        """SELECT deployment, COUNT(*), SUM(completion_tokens),
                  SUM(MAX(latency_ms - COALESCE(ttft_ms, 0), 1)) / 1000.0
           FROM usage WHERE ts >= ? AND ts < ? AND status < 400 AND error_code IS NULL
                AND completion_tokens > 0 AND deployment IS NOT NULL
           GROUP BY deployment ORDER BY deployment""", (since, _INF if until is None else until)).fetchall()
    return [{"deployment": d, "requests": n, "completion_tokens": tokens,
             "tokens_per_s": round(tokens / seconds, 1) if seconds else None} for d, n, tokens, seconds in rows]


# The request log's filters: a query parameter -> its column; values are bound, never pasted.
LOG_FILTERS = {"key": "key_name", "model": "model", "deployment": "deployment", "status": "status",
               "error_class": "error_class", "face": "face", "route": "route", "request_id": "request_id"}


def request_log(conn: sqlite3.Connection, since: float, filters: dict[str, str], limit: int = 200,
                before: float | None = None) -> list[UsageRow]:
    """The newest requests first (no prompt text is ever stored); each filter is an exact match, and
    error_class "any" means every failed request."""
    where, args = ["ts >= ?", "ts < ?"], [since, _INF if before is None else before]
    for name, value in filters.items():
        if name not in LOG_FILTERS:
            raise BadRequest(f"cannot filter the request log by {name!r}; use one of {sorted(LOG_FILTERS)}",
                             param=name)
        if name == "error_class" and value == "any":
            where.append("error_class IS NOT NULL")
        elif name == "status":
            try:
                where.append("status = ?")
                args.append(int(value))
            except ValueError:
                raise BadRequest("status must be a number", param="status") from None
        else:
            where.append(f"{LOG_FILTERS[name]} = ?")
            args.append(value)
    found = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE {' AND '.join(where)} "
                         f"ORDER BY ts DESC, id DESC LIMIT ?", (*args, int(limit))).fetchall()
    return [from_db(r) for r in found]


def key_activity(conn: sqlite3.Connection, since: float) -> dict[str, dict]:
    """Per key name: when it was last used (ever) and how many of its requests litegate's policy refused
    since a moment (limits, budgets, models it may not use)."""
    out = {name: {"last_used": last, "refused": 0}
           for name, last in conn.execute("SELECT key_name, MAX(ts) FROM usage GROUP BY key_name")}
    for name, refused in conn.execute(
            "SELECT key_name, COUNT(*) FROM usage WHERE ts >= ? AND error_class = 'policy' GROUP BY key_name",
            (since,)):
        out.setdefault(name, {"last_used": None, "refused": 0})["refused"] = refused
    return out


def first_time(conn: sqlite3.Connection) -> float | None:
    """When the oldest kept request arrived (None for an empty store): the dashboard picks its range by it."""
    return conn.execute("SELECT MIN(ts) FROM usage").fetchone()[0]
