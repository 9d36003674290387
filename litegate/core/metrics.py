"""Prometheus metrics kept in memory and rendered in the text exposition format (/metrics).

Counters and histograms are keyed by (name, labels); the app owns one Metrics instance.
Names follow Prometheus conventions (litegate_*_total, *_seconds); labels use the same words
as LiteLLM's where they mean the same thing (model, api_key_alias as `key`, deployment).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

HELP = {
    "litegate_requests_total": ("counter", "Requests by model, deployment, key and HTTP status."),
    "litegate_request_errors_total": ("counter", "Failed requests by model, key, class (backend: a model or the "
                                                  "way to it; policy: litegate's limits, budgets, key rights; "
                                                  "client: bad request, key or model name) and code."),
    "litegate_tokens_total": ("counter", "Tokens by model, key and type (prompt, completion, cached)."),
    "litegate_cost_usd_total": ("counter", "Cost in US dollars by model and key (price table in the config)."),
    "litegate_fallbacks_total": ("counter", "Requests answered by a fallback or retry route."),
    "litegate_search_calls_total": ("counter", "Server-side web searches and page fetches by tool and outcome."),
    "litegate_request_duration_seconds": ("histogram", "Whole request time by model."),
    "litegate_time_to_first_token_seconds": ("histogram", "Time to the first streamed event by model."),
    "litegate_requests_in_flight": ("gauge", "Requests being served right now."),
    "litegate_deployment_healthy": ("gauge", "1 when a deployment is not cooling down."),
    "litegate_deployment_in_flight": ("gauge", "Requests running on a deployment."),
    "litegate_deployment_queued": ("gauge", "Requests waiting for a slot on a deployment."),
    "litegate_state_store_up": ("gauge", "1 while the shared state store (Redis) is reachable (state shared only)."),
    "litegate_state_outages_total": ("counter", "Times the shared state store became unreachable."),
    "litegate_state_local_admissions_total": ("counter", "Requests counted by this instance alone: store away."),
    "litegate_usage_rows_pending": ("gauge", "Usage rows not yet written to SQLite."),
    "litegate_usage_rows_dropped_total": ("counter", "Usage rows dropped because the buffer was full."),
}


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}  # bucket counts..., sum, count
        self.in_flight = 0

    def inc(self, name: str, labels: Labels = (), value: float = 1.0) -> None:
        key = (name, labels)
        self.counters[key] = self.counters.get(key, 0.0) + value

    def observe(self, name: str, labels: Labels, seconds: float) -> None:
        h = self.histograms.get((name, labels))
        if h is None:
            h = self.histograms[(name, labels)] = [0.0] * (len(BUCKETS) + 2)
        i = bisect_left(BUCKETS, seconds)
        if i < len(BUCKETS):  # beyond the last bound only the +Inf bucket (= count) holds it
            h[i] += 1
        h[-2] += seconds
        h[-1] += 1

    def render(self, gauges: Iterable[tuple[str, Labels, float]] = ()) -> str:
        lines: list[str] = []
        by_name: dict[str, list[str]] = {}
        for (name, labels), value in sorted(self.counters.items()):
            by_name.setdefault(name, []).append(f"{name}{_labels(labels)} {value:g}")
        for (name, labels), h in sorted(self.histograms.items()):
            by_name.setdefault(name, []).extend(self._histogram(name, labels, h))
        gauges = [("litegate_requests_in_flight", (), float(self.in_flight)), *gauges]
        for name, labels, value in gauges:
            by_name.setdefault(name, []).append(f"{name}{_labels(labels)} {value:g}")
        for name, samples in by_name.items():
            kind, text = HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _histogram(name: str, labels: Labels, h: list[float]) -> list[str]:
        out, running = [], 0.0
        for bound, count in zip(BUCKETS, h):
            running += count
            out.append(f"{name}_bucket{_labels(labels + (('le', f'{bound:g}'),))} {running:g}")
        out.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {h[-1]:g}")
        out.append(f"{name}_sum{_labels(labels)} {h[-2]:g}")
        out.append(f"{name}_count{_labels(labels)} {h[-1]:g}")
        return out
