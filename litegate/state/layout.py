"""Where shared state lives in Redis (key names), and the counts waiting to be sent (Pending).

Every key starts with the configured prefix, so several teams (or tests) can share one server.
Key names carry litegate key names and deployment ids as they are; Redis keys are binary-safe.

    {p}epoch                  the data generation: set when an instance finds it missing; a new
                              one means Redis lost its data and each instance re-publishes
    {p}instances              hash instance -> last time it sent counts (the team's members)
    {p}rpm:{key}              zset request id -> start time (rolling 60 s window)
    {p}tpm:{key}              hash second -> tokens (rolling 60 s window)
    {p}conc:{key}             zset lease -> expiry (requests running now)
    {p}day:{key}:{YYYY-MM-DD} hash instance -> tokens   (budgets: the team's sum is the sum of
    {p}mon:{key}:{YYYY-MM}    hash instance -> tokens    the instances' own counts, so each can
    {p}cost:{key}:{YYYY-MM}   hash instance -> cost      re-publish its own from SQLite exactly)
    {p}cool                   hash deployment id -> "until|error" (until in Redis time)
    {p}use:{instance}:{hour}  hash of usage counters for one hour (see FIELDS)
    {p}kv:{space}:{name}      dashboard sessions, search results (with a TTL)
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DAY_TTL_S = 3 * 86400
MONTH_TTL_S = 40 * 86400
USAGE_TTL_S = 32 * 86400  # team usage in Redis reaches back a month; each SQLite log keeps the rest
HOUR = 3600
# Usage counters per hour: requests, errors, prompt, completion, cached tokens, cost. Each also per
# key and per model as "key\t<name>\t<f>" / "model\t<name>\t<f>".
FIELDS = {"r": "requests", "e": "errors", "p": "prompt_tokens", "c": "completion_tokens", "k": "cached_tokens",
          "$": "cost"}
DIMENSIONS = ("key", "model")


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str
    instance: str

    @property
    def epoch(self) -> str:
        return f"{self.prefix}epoch"

    @property
    def instances(self) -> str:
        return f"{self.prefix}instances"

    def rpm(self, key: str) -> str:
        return f"{self.prefix}rpm:{key}"

    def tpm(self, key: str) -> str:
        return f"{self.prefix}tpm:{key}"

    def conc(self, key: str) -> str:
        return f"{self.prefix}conc:{key}"

    def day(self, key: str, day: str) -> str:
        return f"{self.prefix}day:{key}:{day}"

    def month(self, key: str, month: str) -> str:
        return f"{self.prefix}mon:{key}:{month}"

    def cost(self, key: str, month: str) -> str:
        return f"{self.prefix}cost:{key}:{month}"

    @property
    def cool(self) -> str:
        return f"{self.prefix}cool"

    def usage(self, hour: int, instance: str | None = None) -> str:
        return f"{self.prefix}use:{instance or self.instance}:{hour}"

    def kv(self, space: str, name: str) -> str:
        return f"{self.prefix}kv:{space}:{name}"


def hour_of(t: float) -> int:
    return int(t // HOUR) * HOUR


def usage_fields(key: str, model: str, requests: int, errors: int, prompt: int, completion: int, cached: int,
                 cost: float) -> dict[str, float]:
    """One request's (or a sum's) counters, in total, for its key and for its model."""
    values = {"r": requests, "e": errors, "p": prompt, "c": completion, "k": cached, "$": cost}
    out: dict[str, float] = {}
    for f, v in values.items():
        if v:
            out[f] = v
            out[f"key\t{key}\t{f}"] = v
            out[f"model\t{model}\t{f}"] = v
    return out


def add_fields(bucket: dict[str, float], fields: Mapping[str, float]) -> None:
    """Usage counters summed into a bucket (pending sends, this instance's own tally)."""
    for f, v in fields.items():
        bucket[f] = bucket.get(f, 0) + v


@dataclass
class Pending:
    """Counts not yet in Redis: summed while a send is under way or Redis is away, sent in one go.

    Concurrency releases and cooldowns are kept as a list / latest value; budgets, tokens per
    minute and usage are sums, so a long outage costs memory per key and hour, not per request.
    """

    releases: list[tuple[str, str]] = field(default_factory=list)  # (conc zset, lease)
    tpm: dict[str, int] = field(default_factory=dict)
    day: dict[str, int] = field(default_factory=dict)
    month: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (mon, cost keys) -> [tokens, cost]
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    cool: dict[str, tuple[float, str]] = field(default_factory=dict)  # deployment -> (seconds, error)

    def __bool__(self) -> bool:
        return bool(self.releases or self.tpm or self.day or self.month or self.usage or self.cool)

    def add_usage(self, hkey: str, fields: Mapping[str, float]) -> None:
        add_fields(self.usage.setdefault(hkey, {}), fields)

    def take(self) -> Pending:
        """Everything pending, leaving this empty (put it back with `merge` if sending fails)."""
        out = Pending(self.releases, self.tpm, self.day, self.month, self.usage, self.cool)
        self.releases, self.tpm, self.day, self.month, self.usage, self.cool = [], {}, {}, {}, {}, {}
        return out

    def drop_counts(self) -> Pending:
        """Take the budget and usage sums only: the SQLite log is about to be published instead."""
        out = Pending(day=self.day, month=self.month, usage=self.usage)
        self.day, self.month, self.usage = {}, {}, {}
        return out

    def merge(self, other: Pending) -> None:
        self.releases[:0] = other.releases
        for k, v in other.tpm.items():
            self.tpm[k] = self.tpm.get(k, 0) + v
        for k, v in other.day.items():
            self.day[k] = self.day.get(k, 0) + v
        for k, (t, c) in other.month.items():
            cur = self.month.setdefault(k, [0, 0.0])
            cur[0] += t
            cur[1] += c
        for k, fields in other.usage.items():
            self.add_usage(k, fields)
        for k, v in other.cool.items():
            self.cool.setdefault(k, v)  # a newer cooldown wins

    def payload(self, layout: Layout) -> dict[str, Any]:
        """The flush script's argument (JSON)."""
        return {"rel": [list(r) for r in self.releases],
                "tpm": [[k, v] for k, v in self.tpm.items()],
                "day": [[k, v, DAY_TTL_S] for k, v in self.day.items()],
                "mon": [[m, c, tokens, cost, MONTH_TTL_S] for (m, c), (tokens, cost) in self.month.items()],
                "use": [[k, [[f, v] for f, v in fields.items()], USAGE_TTL_S] for k, fields in self.usage.items()],
                "cool": [[layout.cool, dep, secs, err] for dep, (secs, err) in self.cool.items()],
                "inst": [layout.instances, layout.instance]}


def instance_name(configured: str) -> str:
    """This instance's name in team usage: configured, else the host name."""
    return configured or re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:64] or "litegate"


def opt(v: float | None) -> str:
    """A limit as a script argument: empty for none."""
    return "" if v is None else repr(v)


def glob_escape(s: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", s)
