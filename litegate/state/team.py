"""Team usage: every instance's hourly counters read back from Redis, per instance and in total;
this instance's own counts (Tally) and the seed payload that publishes them.

Pure functions over plain data; shared.py does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litegate.core.limits import day_of, month_of
from litegate.state.base import Seed
from litegate.state.layout import (
    DAY_TTL_S, DIMENSIONS, FIELDS, HOUR, MONTH_TTL_S, USAGE_TTL_S, Layout, add_fields, hour_of,
)


def hours(since: float, until: float) -> list[int]:
    """The hour buckets that overlap [since, until): team usage is counted per hour."""
    return list(range(hour_of(since), int(until), HOUR))


def _blank(group: str | None) -> dict[str, Any]:
    return {"group": group, **{name: 0 for name in FIELDS.values()}}


def _decode(raw: dict) -> dict[str, float]:
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def summarise(per_instance: dict[str, list[dict]], group_by: str | None) -> dict[str, Any]:
    """{instance: [hour hashes]} -> rows per instance and in total, grouped by key or model if asked."""
    dim = group_by if group_by in DIMENSIONS else None
    instances: dict[str, list[dict[str, Any]]] = {}
    total: dict[str | None, dict[str, Any]] = {}
    for name, hashes in sorted(per_instance.items()):
        rows: dict[str | None, dict[str, Any]] = {}
        for raw in hashes:
            for f, v in _decode(raw).items():
                if dim is None:
                    if "\t" in f:
                        continue
                    group, short = None, f
                else:
                    parts = f.split("\t")
                    if len(parts) != 3 or parts[0] != dim:
                        continue
                    group, short = parts[1], parts[2]
                if short not in FIELDS:
                    continue
                for bucket in (rows, total):
                    row = bucket.setdefault(group, _blank(group))
                    row[FIELDS[short]] += v
        if rows:
            instances[name] = [_tidy(r) for _, r in sorted(rows.items(), key=lambda kv: str(kv[0]))]
    return {"group_by": dim, "instances": instances,
            "total": [_tidy(r) for _, r in sorted(total.items(), key=lambda kv: str(kv[0]))]}


def _tidy(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 6) if k == "cost" else int(v)) if isinstance(v, float) else v for k, v in row.items()}


def seed_payload(layout: Layout, seed: Seed, now: float) -> dict[str, Any]:
    """The SEED script's argument: today's and this month's sums per key, and this instance's hours."""
    day, month = day_of(now), month_of(now)
    return {"day": [[layout.day(k, day), int(t), DAY_TTL_S] for k, (t, _c) in seed.day.items() if t],
            "mon": [[layout.month(k, month), layout.cost(k, month), int(t), float(c), MONTH_TTL_S]
                    for k, (t, c) in seed.month.items() if t or c],
            "use": [[layout.usage(h), [[f, v] for f, v in fields.items()], USAGE_TTL_S]
                    for h, fields in seed.hours.items() if fields],
            "inst": [layout.instances, layout.instance]}


def hours_from_points(total: list[Any], by_key: list[Any], by_model: list[Any]) -> dict[int, dict[str, float]]:
    """Hourly usage points from the SQLite log (usage.Point: t, series, requests, ...) as counters."""
    out: dict[int, dict[str, float]] = {}
    for dim, points in ((None, total), ("key", by_key), ("model", by_model)):
        for pt in points:
            values = {"r": pt.requests, "e": pt.errors, "p": pt.prompt_tokens, "c": pt.completion_tokens,
                      "k": pt.cached_tokens, "$": pt.cost}
            bucket = out.setdefault(int(pt.t), {})
            for f, v in values.items():
                if v:
                    bucket[f if dim is None else f"{dim}\t{pt.series}\t{f}"] = v
    return out


@dataclass
class Tally:
    """This instance's own counts, kept whole in memory: what it publishes, as values, on (re)joining.

    Loaded once from the SQLite log (rows from before this process started, so nothing is counted
    twice) and added to by every request of this run as it settles, so a snapshot taken at the same
    moment as the pending sends are dropped is exact, however long the log took to read.
    """

    hours: dict[int, dict[str, float]] = field(default_factory=dict)
    day: dict[tuple[str, str], int] = field(default_factory=dict)  # (day label, key) -> tokens
    month: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (month label, key) -> [tokens, cost]

    def add_usage(self, hour: int, fields: dict[str, float]) -> None:
        add_fields(self.hours.setdefault(hour, {}), fields)

    def add_budget(self, key: str, day: str, month: str, tokens: int, cost: float) -> None:
        if tokens:
            self.day[(day, key)] = self.day.get((day, key), 0) + tokens
        m = self.month.setdefault((month, key), [0, 0.0])
        m[0] += tokens
        m[1] += cost

    def absorb(self, seed: Seed, at: float) -> None:
        """Counts read from the log (rows before `at`) join what this run has counted meanwhile."""
        day, month = day_of(at), month_of(at)
        for key, (tokens, _cost) in seed.day.items():
            self.day[(day, key)] = self.day.get((day, key), 0) + int(tokens)
        for key, (tokens, cost) in seed.month.items():
            m = self.month.setdefault((month, key), [0, 0.0])
            m[0] += int(tokens)
            m[1] += float(cost)
        for hour, fields in seed.hours.items():
            self.add_usage(int(hour), dict(fields))

    def snapshot(self, now: float) -> Seed:
        """Today's and this month's sums per key and the hours Redis keeps, dropping older ones."""
        for hour in [h for h in self.hours if h < now - USAGE_TTL_S]:
            del self.hours[hour]
        day, month = day_of(now), month_of(now)
        for k in [k for k in self.day if k[0] != day]:
            del self.day[k]
        for k in [k for k in self.month if k[0] != month]:
            del self.month[k]
        return Seed(day={key: (t, 0.0) for (_, key), t in self.day.items()},
                    month={key: (int(t), c) for (_, key), (t, c) in self.month.items()},
                    hours={h: dict(f) for h, f in self.hours.items()})
