"""RedisState: limits, budgets, cooldowns, sessions, the search cache and team usage shared by
several litegate instances through one Redis (or Valkey).

The hot path costs one round trip: ADMIT (scripts.py) checks and counts a request and brings back the
live cooldowns. What a finished request used is sent after the answer, many requests to a trip.

Faults never stop traffic. A Redis error or a reply slower than state.timeout_ms marks the store
down: a warning is logged once per outage, the metric and /admin/backends say so, requests are
counted here alone (fail_open) or, for keys with limits, refused with a 503 (fail_open false), and
a prober pings every state.retry_s. On joining (start, recovery, or a new `epoch` showing Redis
lost its data) the instance replaces its own budget and usage counts in Redis with the sums from
its SQLite log (the seed), so a Redis restart, with or without persistence, loses no usage.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from litegate.config import Config, Key
from litegate.config import State as StateConfig
from litegate.core import limits as lim
from litegate.core.limits import Limits
from litegate.core.metrics import Metrics
from litegate.errors import GatewayError
from litegate.state import safe_url, scripts, team
from litegate.state.base import Admission, CooldownSink, SeedSource, Spent
from litegate.state.layout import Layout, Pending, glob_escape, hour_of, instance_name, opt, usage_fields

log = structlog.get_logger("litegate.state")
FAULTS = (RedisError, OSError, asyncio.TimeoutError)
LEASE_S = 900  # a crashed instance's concurrency leases lapse after this (its restart frees them at once)


class RedisState:
    kind = "redis"

    def __init__(self, cfg: StateConfig, limits: Limits, metrics: Metrics, *, seed_source: SeedSource | None = None,
                 on_cooldown: CooldownSink | None = None) -> None:
        self.cfg, self.limits, self.metrics = cfg, limits, metrics
        self.instance = instance_name(cfg.instance)
        self.layout = Layout(cfg.key_prefix, self.instance)
        self.seed_source, self.on_cooldown = seed_source, on_cooldown
        t = cfg.timeout_ms / 1000
        # No client-side retries: a failed call falls back at once and the prober does the retrying.
        self.client = aioredis.Redis.from_url(cfg.redis_url, password=cfg.password, socket_timeout=t,
                                              socket_connect_timeout=t, retry=Retry(NoBackoff(), 0),
                                              health_check_interval=0)
        self._admit_script = self.client.register_script(scripts.ADMIT)
        self._flush_script = self.client.register_script(scripts.FLUSH)
        self._seed_script = self.client.register_script(scripts.SEED)
        self.pending = Pending()
        self.tally = team.Tally()
        self._born = time.time()
        self._loading: asyncio.Task | None = None
        self.epoch: str | None = None
        self.up = False
        self.outage = False
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.outages = 0
        self._member_prefix = f"{self.instance}:{secrets.token_hex(4)}:"
        self._seq = itertools.count()
        self._flusher: asyncio.Task | None = None
        self._prober: asyncio.Task | None = None
        self._resyncing: asyncio.Task | None = None
        self._sync_lock = asyncio.Lock()
        self._up = asyncio.Event()
        self._closing = False

    # ------------------------------------------------------------ life
    async def start(self) -> None:
        """Join the team: sharing starts at once, and this instance's sums are published from its SQLite
        log in the background (a big log takes seconds). Never raises: with Redis away the app starts
        on local counts and the prober takes over."""
        self._loading = asyncio.get_running_loop().create_task(self._load())
        try:
            await self._learn_epoch()
            await self._drop_stale_leases()
        except FAULTS as e:
            self._fault(e)
            return
        self._recovered()
        self._resync_soon()

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._prober, self._resyncing, self._loading) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # gone before flush() looks at them
        if self.up:
            await self.flush()
        await self.client.aclose()

    async def wait_up(self) -> None:
        """Until Redis is reachable and this instance is in sync with it."""
        await self._up.wait()

    # ------------------------------------------------------------ hot path
    async def admit(self, key: Key | None, request_id: str) -> Admission:
        if not self.up:
            return self._admit_locally(key)
        L, now = self.layout, time.time()
        k = key.name if key is not None else ""
        member = f"{self._member_prefix}{next(self._seq)}"
        b = key.budget if key is not None else None
        args = ["0"] if key is None else ["1", opt(key.rpm), opt(key.tpm), opt(key.max_concurrent),
                                          opt(b.tokens_per_day), opt(b.tokens_per_month), opt(b.cost_per_month),
                                          member, LEASE_S]
        try:
            month = lim.month_of(now)
            r = await self._admit_script(keys=[L.rpm(k), L.tpm(k), L.conc(k), L.day(k, lim.day_of(now)),
                                               L.month(k, month), L.cool, L.epoch, L.cost(k, month)], args=args)
        except FAULTS as e:
            self._fault(e)
            return self._admit_locally(key)
        if len(r) > 9:
            self._apply_cooldowns(r[9:])
        if r[1].decode() != self.epoch:
            self._resync_soon()
        if key is None:
            return Admission()
        verdict, requests, minute = r[0].decode(), int(r[2]), int(r[3])
        self.limits.observe(key.name, int(float(r[4])), int(float(r[5])), float(r[6]))
        if verdict != "ok":
            raise lim.refusal(key, verdict, now, float(r[7]), running=int(r[8]))
        self.limits.record(key)
        return Admission(member if key.max_concurrent is not None else None, lim.rate_headers(key, requests, minute))

    def _admit_locally(self, key: Key | None) -> Admission:
        self.metrics.inc("litegate_state_local_admissions_total")
        if key is None:
            return Admission()
        if not self.cfg.fail_open and lim.limited(key):
            raise GatewayError(f"key '{key.name}' has limits kept in the shared state store, which is unreachable "
                               "right now (state.fail_open is false); try again shortly", status=503,
                               code="state_unavailable", retry_after=self.cfg.retry_s, error_type="server_error")
        self.limits.admit(key)
        return Admission(None, self.limits.headers(key))

    def settle(self, spent: Spent) -> None:
        L, p = self.layout, self.pending
        tokens = spent.prompt + spent.completion
        if spent.admitted is not None:
            self.limits.settle(spent.admitted, tokens, spent.cost)
            now = time.time()
            if spent.lease:
                p.releases.append((L.conc(spent.admitted), spent.lease))
            if tokens:
                p.tpm[L.tpm(spent.admitted)] = p.tpm.get(L.tpm(spent.admitted), 0) + tokens
                day = L.day(spent.admitted, lim.day_of(now))
                p.day[day] = p.day.get(day, 0) + tokens
            if tokens or spent.cost:
                m = lim.month_of(now)
                month = p.month.setdefault((L.month(spent.admitted, m), L.cost(spent.admitted, m)), [0, 0.0])
                month[0] += tokens
                month[1] += spent.cost
                self.tally.add_budget(spent.admitted, lim.day_of(now), m, tokens, spent.cost)
        hour = hour_of(spent.at)
        fields = usage_fields(spent.key, spent.model, 1, int(spent.error), spent.prompt, spent.completion,
                              spent.cached, spent.cost)
        p.add_usage(L.usage(hour), fields)
        self.tally.add_usage(hour, fields)
        self._kick()

    def cooled(self, dep_id: str, until: float, error: str | None) -> None:
        seconds = until - time.time()
        if seconds > 0:
            self.pending.cool[dep_id] = (seconds, error or "")
            self._kick()

    def _apply_cooldowns(self, pairs: list[bytes]) -> None:
        if self.on_cooldown is None:
            return
        now = time.time()
        for i in range(0, len(pairs) - 1, 2):
            seconds, _, error = pairs[i + 1].decode().partition("|")
            self.on_cooldown(pairs[i].decode(), now + float(seconds), error or None)

    # ------------------------------------------------------------ sending what was used
    def _kick(self) -> None:
        if self.up and not self._closing and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def flush(self) -> None:
        """Finish a rejoin under way and send everything pending now (shutdown, team reads, tests);
        returns early if Redis is away."""
        if self._resyncing is not None and not self._resyncing.done():
            await asyncio.shield(self._resyncing)
        self._kick()
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush_loop(self) -> None:
        while self.pending and self.up and not self._sync_lock.locked():  # a seed under way sends them after
            batch = self.pending.take()
            try:
                applied = await self._flush_script(keys=[self.layout.epoch], args=[
                    self.epoch or "", orjson.dumps(batch.payload(self.layout)), self.instance])
            except FAULTS as e:
                self.pending.merge(batch)
                self._fault(e)
                return
            if not applied:  # Redis lost its data: the seed publishes the log's sums in place of these
                self.pending.merge(batch)
                self._resync_soon()
                return

    # ------------------------------------------------------------ generations and outages
    async def _learn_epoch(self) -> None:
        """The data generation as Redis has it now (started here if there is none)."""
        raw = await self.client.get(self.layout.epoch)
        if raw is None:
            await self.client.set(self.layout.epoch, secrets.token_hex(8), nx=True)
            raw = await self.client.get(self.layout.epoch)
        self.epoch = raw.decode() if raw else None

    async def _resync(self) -> None:
        """Publish this instance's own counts (its Tally: the log read at start plus every request since)
        as values, in place of what Redis holds for it (missing, or an old snapshot's)."""
        async with self._sync_lock:
            if self._loading is not None:
                await asyncio.shield(self._loading)
            flusher = self._flusher
            if flusher is not None and not flusher.done() and flusher is not asyncio.current_task():
                await asyncio.shield(flusher)  # a batch in flight lands before the values that include it
            L, now = self.layout, time.time()
            seed = self.tally.snapshot(now)
            self.pending.drop_counts()  # same instant as the snapshot, which carries them
            epoch = await self._seed_script(keys=[L.epoch], args=[
                secrets.token_hex(8), self.instance, orjson.dumps(team.seed_payload(L, seed, now))])
            self.epoch = epoch.decode()
            log.info("state_joined", instance=self.instance, epoch=self.epoch)

    async def _load(self) -> None:
        """The log's counts from before this process started (this run's own are tallied as they come)."""
        if self.seed_source is None:
            return
        try:
            seed = await self.seed_source(self._born)
        except Exception as e:  # the SQLite log is unreadable: the team sees this run's counts only
            log.warning("state_seed_unavailable", error=str(e)[:200])
            return
        self.tally.absorb(seed, self._born)

    async def _drop_stale_leases(self) -> None:
        """At start, concurrency leases an earlier run of this instance left behind are freed."""
        mine = f"{self.instance}:".encode()
        async for zkey in self.client.scan_iter(match=glob_escape(self.layout.conc("")) + "*", count=200):
            stale = [m for m in await self.client.zrange(zkey, 0, -1) if m.startswith(mine)]
            if stale:
                await self.client.zrem(zkey, *stale)

    def _resync_soon(self) -> None:
        if self._resyncing is None or self._resyncing.done():
            self._resyncing = asyncio.get_running_loop().create_task(self._resync_then_flush())

    async def _resync_then_flush(self) -> None:
        try:
            await self._resync()
        except FAULTS as e:
            self._fault(e)
            return
        self._kick()

    def _fault(self, e: BaseException) -> None:
        self.up = False
        self.last_error = f"{type(e).__name__}: {e}"[:200]
        if not self.outage:
            self.outage, self.down_since = True, time.time()
            self.outages += 1
            self._up.clear()
            self.metrics.inc("litegate_state_outages_total")
            log.warning("state_store_unavailable", url=safe_url(self.cfg.redis_url), error=self.last_error,
                        fallback="local counts" if self.cfg.fail_open else "keys with limits refused (503)",
                        retry_s=self.cfg.retry_s)
        if not self._closing and (self._prober is None or self._prober.done()):
            self._prober = asyncio.get_running_loop().create_task(self._probe())

    def _recovered(self) -> None:
        self.up = True
        if self.outage:
            log.info("state_store_recovered", url=safe_url(self.cfg.redis_url),
                     down_s=round(time.time() - (self.down_since or time.time()), 1))
            self.outage, self.down_since = False, None
        self._up.set()

    async def _probe(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.cfg.retry_s)
            try:  # connections from before the outage are dead after a Redis restart: start afresh
                await self.client.connection_pool.disconnect()
                await self._learn_epoch()
            except FAULTS as e:
                self.last_error = f"{type(e).__name__}: {e}"[:200]
                continue
            self._recovered()
            self._resync_soon()  # publishes this instance's sums, then sends what is pending
            return

    # ------------------------------------------------------------ reads for people
    def status(self) -> dict[str, Any]:
        return {"backend": "redis", "shared": True, "up": self.up, "instance": self.instance,
                "url": safe_url(self.cfg.redis_url), "fail_open": self.cfg.fail_open, "down_since": self.down_since,
                "last_error": self.last_error, "outages": self.outages, "pending": bool(self.pending)}

    async def snapshot(self, cfg: Config) -> list[dict[str, Any]]:
        """The team's counts per key (this instance's own when Redis is away)."""
        rows = self.limits.snapshot(cfg)
        if not self.up or not rows:
            return rows
        L, now = self.layout, time.time()
        pipe = self.client.pipeline(transaction=False)
        for key in cfg.auth.keys:
            k = key.name
            pipe.zcount(L.rpm(k), now - 60, "+inf").hgetall(L.tpm(k)).zcount(L.conc(k), now, "+inf")
            month = lim.month_of(now)
            pipe.hvals(L.day(k, lim.day_of(now))).hvals(L.month(k, month)).hvals(L.cost(k, month))
        try:
            res = await pipe.execute()
        except FAULTS as e:
            self._fault(e)
            return rows
        for i, (key, row) in enumerate(zip(cfg.auth.keys, rows)):
            rpm, tpm, conc, day, mt, mc = res[6 * i:6 * i + 6]
            if key.max_concurrent is not None:  # leases are taken only where there is a limit to count
                row["concurrent"] = conc
            row.update(requests_last_minute=rpm,
                       tokens_last_minute=sum(int(v) for s, v in tpm.items() if float(s) > now - 60),
                       tokens_today=sum(int(v) for v in day), tokens_this_month=sum(int(v) for v in mt),
                       cost_this_month=round(sum(float(v) for v in mc), 6))
        return rows

    async def team_usage(self, since: float, until: float | None, group_by: str | None) -> dict[str, Any] | None:
        if not self.up:
            return {"available": False, "error": "the shared state store is unreachable", **self.status()}
        await self.flush()
        L, hours = self.layout, team.hours(since, until or time.time())
        try:
            instances = sorted(i.decode() for i in await self.client.hkeys(L.instances))
            pipe = self.client.pipeline(transaction=False)
            for inst in instances:
                for h in hours:
                    pipe.hgetall(L.usage(h, inst))
            res = await pipe.execute() if instances and hours else []
        except FAULTS as e:
            self._fault(e)
            return {"available": False, "error": "the shared state store is unreachable", **self.status()}
        n = len(hours)
        per = {inst: res[j * n:(j + 1) * n] for j, inst in enumerate(instances)}
        return {"available": True, "instance": self.instance, "since_hour": hour_of(since),
                **team.summarise(per, group_by)}

    # ------------------------------------------------------------ shared values
    async def get(self, space: str, name: str) -> bytes | None:
        if not self.up:
            return None
        try:
            return await self.client.get(self.layout.kv(space, name))
        except FAULTS as e:
            self._fault(e)
            return None

    async def put(self, space: str, name: str, value: bytes, ttl_s: float) -> None:
        if self.up and ttl_s > 0:
            try:
                await self.client.set(self.layout.kv(space, name), value, px=max(1, int(ttl_s * 1000)))
            except FAULTS as e:
                self._fault(e)

    async def delete(self, space: str, name: str) -> bool:
        if self.up:
            try:
                return bool(await self.client.delete(self.layout.kv(space, name)))
            except FAULTS as e:
                self._fault(e)
        return False
