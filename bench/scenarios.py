"""The scenarios, run the same way against each path: direct to the fake backend, litegate, LiteLLM.

Each returns plain dicts that go into the JSON report as they are. A path is a `Target`: where to
send requests, how to phrase them for each route, and which process to watch (RSS, CPU time).
"""

from __future__ import annotations

import asyncio
import json
import statistics
from dataclasses import dataclass
from typing import Awaitable, Callable

from . import loadgen, procs

ROUTES = ("openai", "ollama")
PROMPT = [{"role": "user", "content": "Say hello to the benchmark."}]


# Backend behaviours the fake switches on by model name: "" answers at once, "slow" is the held
# stream, "delay" answers after --delay-ms, "paced" streams one chunk every --pace-ms.
KINDS = ("", "slow", "delay", "paced")


@dataclass(frozen=True)
class Scale:
    name: str
    ready_runs: int        # start-ups timed (median reported)
    idle_s: float          # wait after ready before reading idle RSS
    c1_requests: int       # concurrency-1 requests per route and mode ...
    c1_cap_s: float        # ... or this many seconds, whichever ends first
    warm_s: float          # warm-up before each throughput level
    tput_s: float          # measured seconds per throughput level
    streams: int           # slow streams held open at once
    slow_interval: float   # fake backend: seconds between slow-stream chunks
    slow_chunks: int
    flat_warmup: int       # memory-flat: requests before the first RSS reading ...
    flat_requests: int     # ... and between the two readings
    flat_cap_s: float      # cap for a slow gateway (the count actually sent is reported)
    note: str = ""
    paced_requests: int = 100  # c=1 paced streams per route (each lasts ~20 chunks x --pace-ms)


SCALES = {
    "tiny": Scale("tiny", 2, 0.2, 30, 3, 0.1, 0.3, 40, 0.05, 4, 200, 400, 10,
                  "tiny: a smoke test of the harness (make test); the figures mean nothing", paced_requests=5),
    "quick": Scale("quick", 3, 1.0, 500, 15, 1, 3, 1000, 0.2, 10, 2000, 10_000, 60,
                   "quick: fewer requests and shorter runs than `make bench` (memory-flat uses 10,000 requests, "
                   "not 100,000)", paced_requests=60),
    "full": Scale("full", 7, 1.0, 3000, 30, 2, 10, 1000, 0.5, 20, 5000, 100_000, 150, paced_requests=300),
}


@dataclass
class Target:
    name: str                 # "direct", "litegate", "litellm"
    port: int
    pid: int                  # the process whose RSS and CPU time are read
    cpu: int | None = None    # the CPU it is pinned to
    host: str = "127.0.0.1"
    routes: tuple[str, ...] = ROUTES  # the floor (bench/floor.py) passes the OpenAI route only

    @property
    def gateway(self) -> bool:
        return self.name != "direct"

    def responses_payload(self, stream: bool = False) -> bytes:
        """The same question on litegate's Responses face (store: false, as Codex sends it)."""
        return self.payload("openai", stream, face="responses")

    def payload(self, route: str, stream: bool = False, slow: bool = False, face: str = "openai",
                kind: str = "") -> bytes:
        """A chat request for `route`'s backend; `face="ollama"` / `"anthropic"` / `"responses"` asks litegate
        in that API; `kind` picks the fake backend's behaviour (KINDS; slow=True is kind "slow")."""
        suffix = f"-{kind or 'slow'}" if kind or slow else ""
        if self.gateway:
            model = f"bench-{route}{suffix}"
            if face == "ollama":
                body = {"model": model, "messages": PROMPT, "stream": stream, "options": {"num_predict": 32}}
                return loadgen.request_bytes(self.host, self.port, "/api/chat", body)
            if face == "anthropic":
                body = {"model": model, "messages": PROMPT, "stream": stream, "max_tokens": 32}
                return loadgen.request_bytes(self.host, self.port, "/v1/messages", body)
            if face == "responses":
                body = {"model": model, "input": PROMPT[0]["content"], "stream": stream, "max_output_tokens": 32,
                        "store": False}
                return loadgen.request_bytes(self.host, self.port, "/v1/responses", body)
            body = {"model": model, "messages": PROMPT, "stream": stream, "max_tokens": 32}
            return loadgen.request_bytes(self.host, self.port, "/v1/chat/completions", body)
        model = "bench" + suffix
        if route == "openai":
            body = {"model": model, "messages": PROMPT, "stream": stream, "max_tokens": 32}
            return loadgen.request_bytes(self.host, self.port, "/v1/chat/completions", body)
        body = {"model": model, "messages": PROMPT, "stream": stream, "options": {"num_predict": 32}}
        return loadgen.request_bytes(self.host, self.port, "/api/chat", body)


# ---------------------------------------------------------------- start-up
async def startup(start: Callable[[], procs.Proc], payload: Callable[[procs.Proc], bytes], scale: Scale,
                  timeout_s: float, runs: int | None = None) -> tuple[dict, procs.Proc]:
    """Start `runs` times: exec -> first 200 reply, then idle RSS; the last process is kept running."""
    ready, idle = [], []
    proc = None
    runs = runs or scale.ready_runs
    for i in range(runs):
        proc = start()
        try:
            ready.append(await procs.wait_ready(proc, payload(proc), timeout_s))
            await asyncio.sleep(scale.idle_s)
            idle.append(procs.rss_mb(proc.pid))
        except BaseException:
            proc.stop()
            raise
        if i < runs - 1:
            proc.stop()
    assert proc is not None
    idle_known = [x for x in idle if x is not None]
    return {"runs": runs, "ready_s": round(statistics.median(ready), 4), "ready_s_all": [round(x, 4) for x in ready],
            "idle_rss_mb": round(statistics.median(idle_known), 2) if idle_known else None,
            "idle_rss_mb_all": idle}, proc


# ---------------------------------------------------------------- latency at concurrency 1
async def latency_c1(t: Target, scale: Scale) -> dict:
    out = {}
    for route in t.routes:
        res = {}
        for stream in (False, True):
            payload = t.payload(route, stream)
            await loadgen.closed_loop(t.host, t.port, payload, concurrency=1, stream=stream,
                                      max_requests=max(10, scale.c1_requests // 10), duration_s=scale.c1_cap_s / 5)
            run = await loadgen.closed_loop(t.host, t.port, payload, concurrency=1, stream=stream,
                                            max_requests=scale.c1_requests, duration_s=scale.c1_cap_s)
            res["stream" if stream else "nonstream"] = run.summary(stream)
        out[route] = res
    return out


# ---------------------------------------------------------------- throughput
async def _measured(t: Target, payload: bytes, concurrency: int, scale: Scale, stream: bool = False,
                    bunched: bool = False) -> dict:
    await loadgen.closed_loop(t.host, t.port, payload, concurrency=concurrency, stream=stream, duration_s=scale.warm_s)
    window = procs.Window(t.pid, t.cpu)
    run = await loadgen.closed_loop(t.host, t.port, payload, concurrency=concurrency, stream=stream,
                                    duration_s=scale.tput_s)
    out = run.summary(stream)
    out.update(window.close(run.n))
    if bunched:
        out["bunched"] = run.bunched()
    out["rss_mb"] = procs.rss_mb(t.pid)
    return out


async def throughput(t: Target, scale: Scale) -> dict:
    out = {}
    for route in t.routes:
        res = {}
        for c in (16, 64):
            res[f"c{c}"] = await _measured(t, t.payload(route), c, scale)
        res["stream_c16"] = await _measured(t, t.payload(route, stream=True), 16, scale, stream=True)
        out[route] = res
    return out


async def delayed(t: Target, scale: Scale) -> dict:
    """Concurrency 16 against a backend that answers in --delay-ms: the CPU is mostly idle, so any
    latency the gateway adds beyond its own work is a queue (a pool, a lock, a timer, Nagle, or the
    answers arriving in bursts: `bunched` is the share that ended within 0.5 ms of the one before)."""
    return {route: await _measured(t, t.payload(route, kind="delay"), 16, scale, bunched=True) for route in t.routes}


async def paced(t: Target, scale: Scale) -> dict:
    """Time to first token at concurrency 1 when the backend sends one chunk every --pace-ms."""
    out = {}
    for route in t.routes:
        payload = t.payload(route, stream=True, kind="paced")
        await loadgen.closed_loop(t.host, t.port, payload, concurrency=1, stream=True,
                                  max_requests=max(3, scale.paced_requests // 10))
        run = await loadgen.closed_loop(t.host, t.port, payload, concurrency=1, stream=True,
                                        max_requests=scale.paced_requests, duration_s=scale.c1_cap_s)
        out[route] = run.summary(True)
    return out


# ---------------------------------------------------------------- memory flat
async def memory_flat(t: Target, scale: Scale) -> dict:
    """RSS after a warm-up vs after many more requests (both routes, concurrency 16)."""
    async def load(n: int) -> int:
        sent = 0
        for route in t.routes:
            run = await loadgen.closed_loop(t.host, t.port, t.payload(route), concurrency=16,
                                            max_requests=n // len(t.routes), duration_s=scale.flat_cap_s / len(t.routes))
            sent += run.n + run.errors
        return sent

    warm = await load(scale.flat_warmup)
    await asyncio.sleep(0.5)
    before = procs.rss_mb(t.pid)
    sent = await load(scale.flat_requests)
    await asyncio.sleep(0.5)
    after = procs.rss_mb(t.pid)
    delta = round(after - before, 2) if after is not None and before is not None else None
    return {"warmup_requests": warm, "requests": sent, "planned_requests": scale.flat_requests,
            "rss_after_warmup_mb": before, "rss_after_mb": after, "delta_mb": delta}


# ---------------------------------------------------------------- many slow streams
async def held_streams(t: Target, scale: Scale) -> dict:
    out = {}
    for route in t.routes:
        peak = [0.0]
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], procs.rss_mb(t.pid) or 0.0)
                try:
                    await asyncio.wait_for(stop.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass

        async def all_open() -> dict:
            return {"rss_all_open_mb": procs.rss_mb(t.pid)}

        before = procs.rss_mb(t.pid)
        sampler = asyncio.create_task(sample())
        try:
            res = await loadgen.hold_streams(t.host, t.port, t.payload(route, stream=True, kind="slow"), scale.streams,
                                             on_all_open=all_open)
        finally:
            stop.set()
            await sampler
        res.update(rss_before_mb=before, rss_peak_mb=round(peak[0], 2) or None,
                   hold_s=round(scale.slow_interval * max(0, scale.slow_chunks - 1), 2))
        res.update(res.pop("during") or {})
        await asyncio.sleep(0.5)
        res["rss_after_mb"] = procs.rss_mb(t.pid)
        out[route] = res
    return out


# ---------------------------------------------------------------- the Ollama face
async def ollama_face(t: Target, scale: Scale) -> dict:
    """litegate's /api/chat beside its /v1/chat/completions on both routes, measured back to back so
    the two share the machine's conditions: on the ollama route /api/chat is native pass-through,
    on the openai route it is translated. Only litegate has this face."""
    if t.name != "litegate":
        return {"skipped": "only litegate serves Ollama's API"}
    out = {}
    for route in t.routes:
        res = {"v1_c16": await _measured(t, t.payload(route), 16, scale),
               "api_c16": await _measured(t, t.payload(route, face="ollama"), 16, scale),
               "v1_stream_c16": await _measured(t, t.payload(route, stream=True), 16, scale, stream=True),
               "api_stream_c16": await _measured(t, t.payload(route, stream=True, face="ollama"), 16, scale,
                                                 stream=True)}
        for stream in (False, True):
            run = await loadgen.closed_loop(t.host, t.port, t.payload(route, stream, face="ollama"), concurrency=1,
                                            stream=stream, max_requests=scale.c1_requests // 2,
                                            duration_s=scale.c1_cap_s / 2)
            res["api_c1_stream" if stream else "api_c1"] = run.summary(stream)
        out[route] = res
    return out


# ---------------------------------------------------------------- the Anthropic face
async def anthropic_face(t: Target, scale: Scale) -> dict:
    """litegate's /v1/messages beside its /v1/chat/completions on both routes (same backend), measured
    back to back so the two share the machine's conditions. Only litegate has this face."""
    if t.name != "litegate":
        return {"skipped": "only litegate serves Anthropic's API here"}
    out = {}
    for route in t.routes:
        out[route] = {
            "v1_c16": await _measured(t, t.payload(route), 16, scale),
            "messages_c16": await _measured(t, t.payload(route, face="anthropic"), 16, scale),
            "v1_stream_c16": await _measured(t, t.payload(route, stream=True), 16, scale, stream=True),
            "messages_stream_c16": await _measured(t, t.payload(route, stream=True, face="anthropic"), 16, scale,
                                                   stream=True)}
    return out


# ---------------------------------------------------------------- the Responses face
async def responses_face(t: Target, scale: Scale) -> dict:
    """litegate's /v1/responses beside its /v1/chat/completions (OpenAI route, c=16), measured back to back:
    the Responses face's cost is its CPU per request over chat's. Only litegate has this face."""
    if t.name != "litegate":
        return {"skipped": "only litegate serves the Responses API here"}
    out = {}
    for face, payload in (("chat", t.payload), ("responses", lambda route, stream: t.responses_payload(stream))):
        out[face] = {"nonstream": await _measured(t, payload("openai", False), 16, scale),
                     "stream": await _measured(t, payload("openai", True), 16, scale, stream=True)}
    return out


Step = Callable[[Target, Scale], Awaitable[dict]]
STEPS: list[tuple[str, Step]] = [("latency_c1", latency_c1), ("paced", paced), ("throughput", throughput),
                                 ("delayed", delayed), ("ollama_face", ollama_face), ("anthropic_face", anthropic_face),
                                 ("responses_face", responses_face), ("memory_flat", memory_flat),
                                 ("streams", held_streams)]


async def run_all(t: Target, scale: Scale, log: Callable[[str], None], skip: tuple[str, ...] = ()) -> dict:
    out: dict = {}
    for name, step in STEPS:
        if name in skip:
            continue
        log(f"{t.name}: {name} ...")
        out[name] = await step(t, scale)
        log(f"{t.name}: {name} " + json.dumps(_brief(out[name]))[:400])
    return out


def _brief(d: dict) -> dict:
    keep = ("rps", "p50_ms", "p99_ms", "errors", "ttft_p50_ms", "delta_mb", "rss_peak_mb", "cpu_ms_per_req")
    if any(k in d for k in keep):
        return {k: d[k] for k in keep if k in d}
    return {k: _brief(v) if isinstance(v, dict) else v for k, v in d.items()}
