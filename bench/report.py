"""Targets (PASS / MISS), the Markdown report and the JSON/Markdown files on disk.

Added latency is litegate's percentile minus the direct path's percentile for the same route
(for p99 that is an upper-bound style estimate, not a per-request difference).
Ratios read "litegate : LiteLLM" as `1 : k`, k = LiteLLM's figure / litegate's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import shared_state
from .scenarios import ROUTES

TARGETS = {  # issue 19's goals (one core of a 2-core Linux box), the faces' and shared state's
    "idle_rss_mb": 40, "ready_s": 0.25, "added_p50_ms": 0.45, "added_p99_ms": 2.0, "added_ttft_ms": 1.0,
    "added_paced_ttft_ms": 1.0, "added_delay_p50_ms": 1.0, "rps": 4500, "chunks_per_s": 100_000,
    "vs_litellm": 15, "streams_rss_mb": 100, "flat_mb": 5, "generator_rps": 5000, "face_cost": 1.10,
    "shared_added_p50_ms": 0.3,
}
SECTIONS = ("meta", "systems", "targets", "comparison")
SYSTEM_SECTIONS = ("startup", "latency_c1", "paced", "throughput", "delayed", "ollama_face", "anthropic_face",
                   "memory_flat", "streams")


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _line(name: str, target: str, measured: Any, ok: bool | None, unit: str = "") -> dict:
    status = "n/a" if ok is None else ("PASS" if ok else "MISS")
    shown = "n/a" if measured is None else (f"{measured:,}{unit}" if isinstance(measured, (int, float)) else measured)
    return {"name": name, "target": target, "measured": measured, "shown": shown, "status": status}


def targets(systems: dict) -> list[dict]:
    lg, d, ll = systems.get("litegate", {}), systems.get("direct", {}), systems.get("litellm")
    T, out = TARGETS, []
    v = _get(lg, "startup", "idle_rss_mb")
    out.append(_line("litegate idle RSS after start", f"≤ {T['idle_rss_mb']} MB", v, None if v is None else v <= T["idle_rss_mb"], " MB"))
    v = _get(lg, "startup", "ready_s")
    out.append(_line("litegate exec → first successful request (median)", f"≤ {T['ready_s']} s", v,
                     None if v is None else v <= T["ready_s"], " s"))
    for r in ROUTES:
        for key, tgt, what in (("p50_ms", "added_p50_ms", "p50"), ("p99_ms", "added_p99_ms", "p99")):
            v = _sub(_get(lg, "latency_c1", r, "nonstream", key), _get(d, "latency_c1", r, "nonstream", key))
            out.append(_line(f"{r}: added latency c=1 non-streaming {what}", f"≤ {T[tgt]} ms", v,
                             None if v is None else v <= T[tgt], " ms"))
        v = _sub(_get(lg, "latency_c1", r, "stream", "ttft_p50_ms"), _get(d, "latency_c1", r, "stream", "ttft_p50_ms"))
        out.append(_line(f"{r}: added time to first token c=1 p50", f"≤ {T['added_ttft_ms']} ms", v,
                         None if v is None else v <= T["added_ttft_ms"], " ms"))
        v = _sub(_get(lg, "paced", r, "ttft_p50_ms"), _get(d, "paced", r, "ttft_p50_ms"))
        out.append(_line(f"{r}: added time to first token, paced stream, c=1 p50", f"≤ {T['added_paced_ttft_ms']} ms",
                         v, None if v is None else v <= T["added_paced_ttft_ms"], " ms"))
        v = _sub(_get(lg, "delayed", r, "p50_ms"), _get(d, "delayed", r, "p50_ms"))
        out.append(_line(f"{r}: added p50 at c=16, backend answering in 50 ms", f"≤ {T['added_delay_p50_ms']} ms",
                         v, None if v is None else v <= T["added_delay_p50_ms"], " ms"))
        v = _get(lg, "throughput", r, "stream_c16", "chunks_per_s")
        out.append(_line(f"{r}: streamed chunks/s at c=16", f"≥ {T['chunks_per_s']:,}", v,
                         None if v is None else v >= T["chunks_per_s"], " chunks/s"))
        for c in ("c16", "c64"):
            v = _get(lg, "throughput", r, c, "rps")
            out.append(_line(f"{r}: litegate throughput non-streaming {c}", f"≥ {T['rps']:,} req/s", v,
                             None if v is None else v >= T["rps"], " req/s"))
            lv = _get(ll, "throughput", r, c, "rps") if ll else None
            ratio = round(v / lv, 1) if v and lv else None
            out.append(_line(f"{r}: throughput vs LiteLLM one worker {c}", f"≥ {T['vs_litellm']}x", ratio,
                             None if ratio is None else ratio >= T["vs_litellm"], "x"))
        s = _get(lg, "streams", r) or {}
        n = s.get("n")
        ok = None if not s else (s.get("rss_peak_mb") or 1e9) <= T["streams_rss_mb"] and s.get("errors") == 0
        out.append(_line(f"{r}: {n or 1000:,} concurrent slow streams: peak RSS, errors",
                         f"≤ {T['streams_rss_mb']} MB, 0 errors",
                         None if not s else f"{s.get('rss_peak_mb')} MB, {s.get('errors')} errors", ok))
        v = _get(d, "throughput", r, "c16", "rps")
        out.append(_line(f"{r}: load generator headroom (direct path c16)", f"≥ {T['generator_rps']:,} req/s", v,
                         None if v is None else v >= T["generator_rps"], " req/s"))
    out += face_targets(lg)
    out += anthropic_face_targets(lg)
    for mode in ("nonstream", "stream"):
        chat = _get(lg, "responses_face", "chat", mode, "cpu_ms_per_req")
        resp = _get(lg, "responses_face", "responses", mode, "cpu_ms_per_req")
        v = round(resp / chat, 3) if chat and resp else None
        out.append(_line(f"/v1/responses vs /v1/chat/completions: CPU per request, {mode} c=16",
                         f"≤ {T['face_cost']:.2f}x", v, None if v is None else v <= T["face_cost"], "x"))
    v = _get(lg, "memory_flat", "delta_mb")
    n = _get(lg, "memory_flat", "requests")
    out.append(_line(f"litegate memory flat after {n or 0:,} requests", f"≤ {T['flat_mb']} MB growth", v,
                     None if v is None else v <= T["flat_mb"], " MB"))
    return out


def face_targets(lg: dict) -> list[dict]:
    """The Ollama face costs at most 10% more CPU per request than /v1/chat/completions on the same route
    (measured back to back), and native pass-through to Ollama is the cheapest of the four paths."""
    out = []
    for mode, label in (("", "non-streaming"), ("stream_", "streaming")):
        cost = {}
        for r in ROUTES:
            api = _get(lg, "ollama_face", r, f"api_{mode}c16", "cpu_ms_per_req")
            v1 = _get(lg, "ollama_face", r, f"v1_{mode}c16", "cpu_ms_per_req")
            cost[("api", r)], cost[("v1", r)] = api, v1
            ratio = round(api / v1, 3) if api and v1 else None
            out.append(_line(f"{r}: /api/chat CPU per request vs /v1/chat/completions ({label}, c16)",
                             f"≤ {TARGETS['face_cost']}x", ratio,
                             None if ratio is None else ratio <= TARGETS["face_cost"], "x"))
        native = cost[("api", "ollama")]
        others = [v for k, v in cost.items() if k != ("api", "ollama")]
        known = None if native is None or None in others else min(others)
        out.append(_line(f"ollama: /api/chat pass-through is the cheapest path ({label}, CPU per request, c16)",
                         "≤ every other path", None if known is None else f"{native} ms vs ≥ {known} ms",
                         None if known is None else native <= known))
    return out


def shared_targets(res: dict | None) -> list[dict]:
    """Sharing state through Redis: the p50 its admit round trip adds at c=1, loopback."""
    if res is None:
        return []
    v = res.get("added_p50_ms")
    goal = TARGETS["shared_added_p50_ms"]
    return [_line("Redis shared state: added latency c=1 p50 (keyed, every limit)", f"≤ {goal} ms", v,
                  None if v is None else v <= goal, " ms")]


def anthropic_face_targets(lg: dict) -> list[dict]:
    """The Anthropic face costs at most 10% more CPU per request than /v1/chat/completions on the same
    backend (measured back to back)."""
    out = []
    for mode, label in (("", "non-streaming"), ("stream_", "streaming")):
        for r in ROUTES:
            msgs = _get(lg, "anthropic_face", r, f"messages_{mode}c16", "cpu_ms_per_req")
            v1 = _get(lg, "anthropic_face", r, f"v1_{mode}c16", "cpu_ms_per_req")
            ratio = round(msgs / v1, 3) if msgs and v1 else None
            out.append(_line(f"{r}: /v1/messages CPU per request vs /v1/chat/completions ({label}, c16)",
                             f"≤ {TARGETS['face_cost']}x", ratio,
                             None if ratio is None else ratio <= TARGETS["face_cost"], "x"))
    return out


# ---------------------------------------------------------------- the floor
def floor_figures(systems: dict) -> list[tuple[str, str, Any, Any]]:
    """(figure, goal, floor, litegate) on the OpenAI route: each goal beside what a bare aiohttp
    pass-through (bench/floor.py) reaches on the same machine in the same run."""
    d, fl, lg = systems.get("direct"), systems.get("floor"), systems.get("litegate")
    T, r = TARGETS, "openai"

    def added(system: dict | None, *path: str) -> float | None:
        return _sub(_get(system, *path), _get(d, *path))

    def both(fn) -> tuple[Any, Any]:
        return fn(fl), fn(lg)

    return [
        ("idle RSS after start (MB)", f"≤ {T['idle_rss_mb']}", *both(lambda s: _get(s, "startup", "idle_rss_mb"))),
        ("exec → first answer, median (s)", f"≤ {T['ready_s']}", *both(lambda s: _get(s, "startup", "ready_s"))),
        ("added p50, c=1, non-streaming (ms)", f"≤ {T['added_p50_ms']}",
         *both(lambda s: added(s, "latency_c1", r, "nonstream", "p50_ms"))),
        ("added time to first token, c=1 (ms)", f"≤ {T['added_ttft_ms']}",
         *both(lambda s: added(s, "latency_c1", r, "stream", "ttft_p50_ms"))),
        ("added TTFT, paced stream, c=1 (ms)", f"≤ {T['added_paced_ttft_ms']}",
         *both(lambda s: added(s, "paced", r, "ttft_p50_ms"))),
        ("added p50, c=16, backend 50 ms (ms)", f"≤ {T['added_delay_p50_ms']}",
         *both(lambda s: added(s, "delayed", r, "p50_ms"))),
        ("req/s, c=16, non-streaming", f"≥ {T['rps']:,}", *both(lambda s: _get(s, "throughput", r, "c16", "rps"))),
        ("CPU per request, c=16 (ms)", "", *both(lambda s: _get(s, "throughput", r, "c16", "cpu_ms_per_req"))),
        ("streamed chunks/s, c=16", f"≥ {T['chunks_per_s']:,}",
         *both(lambda s: _get(s, "throughput", r, "stream_c16", "chunks_per_s"))),
        ("CPU per stream, c=16 (ms)", "", *both(lambda s: _get(s, "throughput", r, "stream_c16", "cpu_ms_per_req"))),
        ("1,000 held streams: peak RSS (MB)", f"≤ {T['streams_rss_mb']}",
         *both(lambda s: _get(s, "streams", r, "rss_peak_mb"))),
    ]


def floor_markdown(systems: dict) -> list[str]:
    if "floor" not in systems:
        return []
    if "error" in systems["floor"]:
        return ["", "## The floor", "", f"bench/floor.py failed: {systems['floor']['error']}"]
    lines = ["", "## The floor (OpenAI route)", "",
             "bench/floor.py: aiohttp's server on uvloop and litegate's pooled client with nothing in between "
             "(no keys, limits, usage, metrics, log, routing or translation). A goal the floor misses cannot be "
             "met on this stack.", "", "| figure | goal | floor | litegate |", "|---|---|---|---|"]
    lines += [f"| {name} | {goal} | {_fmt(f)} | {_fmt(g)} |" for name, goal, f, g in floor_figures(systems)]
    return lines


# ---------------------------------------------------------------- detail table
ROWS = [  # (label, path within a system, lower is better)
    ("exec → first successful request, median (s)", ("startup", "ready_s")),
    ("idle RSS after start (MB)", ("startup", "idle_rss_mb")),
]
ROUTE_ROWS = [
    ("c=1 non-streaming p50 (ms)", ("latency_c1", "{r}", "nonstream", "p50_ms")),
    ("c=1 non-streaming p99 (ms)", ("latency_c1", "{r}", "nonstream", "p99_ms")),
    ("c=1 streaming TTFT p50 (ms)", ("latency_c1", "{r}", "stream", "ttft_p50_ms")),
    ("c=1 streaming TTFT p99 (ms)", ("latency_c1", "{r}", "stream", "ttft_p99_ms")),
    ("c=1 paced stream TTFT p50 / p99 (ms)", ("paced", "{r}", ("ttft_p50_ms", "ttft_p99_ms"))),
    ("c=16, backend 50 ms: p50 / p99 (ms)", ("delayed", "{r}", ("p50_ms", "p99_ms"))),
    ("c=16, backend 50 ms: req/s, gateway CPU busy", ("delayed", "{r}", ("rps", "cpu_util"))),
    ("c=16, backend 50 ms: share of answers ending < 0.5 ms after the previous", ("delayed", "{r}", "bunched")),
    ("c=16 req/s", ("throughput", "{r}", "c16", "rps")),
    ("c=16 p50 / p99 (ms)", ("throughput", "{r}", "c16", ("p50_ms", "p99_ms"))),
    ("c=16 CPU per request (ms)", ("throughput", "{r}", "c16", "cpu_ms_per_req")),
    ("c=64 req/s", ("throughput", "{r}", "c64", "rps")),
    ("c=64 p50 / p99 (ms)", ("throughput", "{r}", "c64", ("p50_ms", "p99_ms"))),
    ("c=64 CPU per request (ms)", ("throughput", "{r}", "c64", "cpu_ms_per_req")),
    ("c=64 errors", ("throughput", "{r}", "c64", "errors")),
    ("c=16 / c=64: other processes' load on the server CPU", ("throughput", "{r}", ("c16", "c64"), "other_load")),
    ("streaming c=16: chunks/s", ("throughput", "{r}", "stream_c16", "chunks_per_s")),
    ("streaming c=16: streams/s", ("throughput", "{r}", "stream_c16", "rps")),
    ("streaming c=16: CPU per stream (ms)", ("throughput", "{r}", "stream_c16", "cpu_ms_per_req")),
    ("Ollama face /api/chat c=1 non-streaming p50 (ms)", ("ollama_face", "{r}", "api_c1", "p50_ms")),
    ("Ollama face /api/chat c=1 streaming TTFT p50 (ms)", ("ollama_face", "{r}", "api_c1_stream", "ttft_p50_ms")),
    ("Ollama face /api/chat c=16 req/s", ("ollama_face", "{r}", "api_c16", "rps")),
    ("Ollama face /api/chat c=16 CPU per request (ms)", ("ollama_face", "{r}", "api_c16", "cpu_ms_per_req")),
    ("… /v1/chat/completions c=16 CPU per request, same window (ms)", ("ollama_face", "{r}", "v1_c16",
                                                                         "cpu_ms_per_req")),
    ("Ollama face /api/chat streaming c=16 CPU per request (ms)", ("ollama_face", "{r}", "api_stream_c16",
                                                                   "cpu_ms_per_req")),
    ("… /v1/chat/completions streaming c=16 CPU per request, same window (ms)",
     ("ollama_face", "{r}", "v1_stream_c16", "cpu_ms_per_req")),
    ("slow streams held open at once", ("streams", "{r}", "open_at_once")),
    ("slow streams: peak RSS (MB)", ("streams", "{r}", "rss_peak_mb")),
    ("slow streams: errors", ("streams", "{r}", "errors")),
]
FACE_ROWS = [  # litegate only: the same answers through each face (OpenAI route, c=16)
    ("/v1/chat/completions non-streaming: CPU per request (ms)", ("responses_face", "chat", "nonstream", "cpu_ms_per_req")),
    ("/v1/responses non-streaming: CPU per request (ms)", ("responses_face", "responses", "nonstream", "cpu_ms_per_req")),
    ("/v1/chat/completions streaming: CPU per request (ms)", ("responses_face", "chat", "stream", "cpu_ms_per_req")),
    ("/v1/responses streaming: CPU per request (ms)", ("responses_face", "responses", "stream", "cpu_ms_per_req")),
    ("/v1/responses non-streaming req/s", ("responses_face", "responses", "nonstream", "rps")),
    ("/v1/responses errors (non-streaming / streaming)",
     ("responses_face", "responses", ("nonstream", "stream"), "errors")),
]
TAIL_ROWS = [
    ("memory flat: requests sent", ("memory_flat", "requests")),
    ("memory flat: RSS after warm-up (MB)", ("memory_flat", "rss_after_warmup_mb")),
    ("memory flat: RSS after the requests (MB)", ("memory_flat", "rss_after_mb")),
    ("memory flat: growth (MB)", ("memory_flat", "delta_mb")),
]


def _value(system: dict | None, path: tuple, route: str = "") -> Any:
    if system is None:
        return None
    path = tuple(p.format(r=route) if isinstance(p, str) else p for p in path)
    if isinstance(path[-1], tuple):
        vals = [_get(system, *path[:-1], k) for k in path[-1]]
        return None if None in vals else " / ".join(f"{x:g}" for x in vals)
    if len(path) > 1 and isinstance(path[-2], tuple):
        vals = [_get(system, *path[:-2], k, path[-1]) for k in path[-2]]
        return None if None in vals else " / ".join(f"{x:g}" for x in vals)
    return _get(system, *path)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


HIGHER_IS_BETTER = ("req/s", "chunks/s", "streams/s", "held open", "requests sent")


def _ratio(a: Any, b: Any, label: str) -> tuple[str, str]:
    """("1 : k", how many times better litegate is) for two figures of one metric."""
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or not a or not b:
        return "—", "—"
    k = b / a
    better = 1 / k if any(h in label for h in HIGHER_IS_BETTER) else k
    return f"1 : {k:.2f}", f"{better:,.1f}×"


def noise_note(systems: dict) -> str | None:
    """A warning when other processes competed for the server's CPU while it was measured."""
    loads = [w.get("other_load") or 0.0 for name in ("litegate", "litellm")
             for r in ROUTES for w in (_get(systems.get(name), "throughput", r) or {}).values() if isinstance(w, dict)]
    worst = max(loads, default=0.0)
    if worst < 0.05:
        return None
    return (f"the machine was not quiet: other processes used up to {worst:.0%} of the server's CPU during a "
            f"throughput window, so req/s and latency there are pessimistic; CPU time per request is the steadier figure")


def markdown(report: dict) -> str:
    meta, systems, comp = report["meta"], report["systems"], report["comparison"]
    d, lg, ll = systems.get("direct"), systems.get("litegate"), systems.get("litellm")
    lines = [f"# litegate benchmark — {meta['timestamp']}", "",
             f"- scale: **{meta['scale']}**{' — ' + meta['scale_note'] if meta.get('scale_note') else ''}",
             f"- machine: {meta['machine']}; Python {meta['python']}; litegate {meta['litegate_version']}, "
             f"commit {meta.get('commit') or 'unknown'}",
             f"- pinning: {meta['pinning']}",
             f"- load generator: {meta['generator']}",
             f"- LiteLLM: {comp['note']}"]
    lines += [f"- note: {n}" for n in meta.get("notes", [])]
    verdicts = [t["status"] for t in report["targets"]]
    lines += ["", "## Targets", "", f"{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS, "
              f"{verdicts.count('n/a')} not measured.", "", "| target | goal | measured | |", "|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['target']} | {t['shown']} | {t['status']} |" for t in report["targets"]]
    lines += ["", "## All figures", "",
              "Direct = load generator straight to the fake backend (OpenAI route: its /v1/chat/completions; "
              "Ollama route: its native /api/chat). litegate : LiteLLM is `1 : k` with k = LiteLLM / litegate; "
              "the last column says how many times better litegate's figure is (more req/s, fewer ms or MB).", "",
              "Floor = bench/floor.py, a bare aiohttp pass-through (OpenAI route only).", "",
              "| metric | direct | floor | litegate | LiteLLM | litegate : LiteLLM | litegate better by |",
              "|---|---|---|---|---|---|---|"]
    fl = systems.get("floor")

    def row(label: str, path: tuple, route: str = "") -> str:
        a, b = _value(lg, path, route), _value(ll, path, route)
        ratio, better = _ratio(a, b, label)
        return (f"| {label} | {_fmt(_value(d, path, route))} | {_fmt(_value(fl, path, route))} | {_fmt(a)} "
                f"| {_fmt(b)} | {ratio} | {better} |")

    lines += [row(label, path) for label, path in ROWS]
    for r in ROUTES:
        lines.append(f"| **{r} route** | | | | | | |")
        lines += [row(label, path, r) for label, path in ROUTE_ROWS]
    lines.append("| **Responses face (OpenAI route)** | | | | | | |")
    lines += [row(label, path) for label, path in FACE_ROWS]
    lines.append("| **both routes** | | | | | | |")
    lines += [row(label, path) for label, path in TAIL_ROWS]
    lines += floor_markdown(systems)
    lines += shared_state.markdown(report.get("shared_state"))
    if meta.get("profile"):
        lines += ["", f"Profile of litegate under this run: `{meta['profile']}` (figures inflated by the profiler)."]
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    stamp = report["meta"]["timestamp"].replace(":", "").replace("-", "")
    md = markdown(report)
    paths = []
    for name in (stamp, "latest"):
        for ext, text in (("json", json.dumps(report, indent=1, default=str)), ("md", md)):
            path = os.path.join(out_dir, f"{name}.{ext}")
            with open(path, "w") as f:
                f.write(text)
            paths.append(path)
    return paths[0], paths[1]
