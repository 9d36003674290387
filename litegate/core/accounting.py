"""What a finished request counts for: its usage row, its key's limits and budgets, the metrics.

Called once per model request (chat, completions, embeddings) when it ends, whatever the outcome.
Cost comes from the deployment's price table (zero for local models). Never a prompt or a completion.
"""

from __future__ import annotations

import time

from litegate.core.services import Call, Services
from litegate.state import Spent
from litegate.errors import error_class
from litegate.usage import UsageRow


def cost_of(call: Call) -> float:
    u = call.usage
    if u is None or call.attempt is None:
        return 0.0
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
    return call.attempt.deployment.price.cost(u.prompt_tokens, u.completion_tokens, cached)


def finish(svc: Services, call: Call, status: int, error_code: str | None) -> None:
    u = call.usage
    prompt = u.prompt_tokens if u else 0
    completion = u.completion_tokens if u else 0
    cached = u.prompt_tokens_details.cached_tokens if u and u.prompt_tokens_details else 0
    cost = cost_of(call)
    elapsed = time.perf_counter() - call.started
    klass = error_class(status, error_code)
    svc.state.settle(Spent(at=time.time() - elapsed, key=call.key or "anonymous",
                           admitted=call.admitted.name if call.admitted is not None else None, lease=call.lease,
                           model=call.model, prompt=prompt, completion=completion, cached=cached, cost=cost,
                           error=status >= 400 or error_code is not None))
    if svc.usage is not None:
        svc.usage.record(UsageRow(
            time=time.time() - elapsed, request_id=call.request_id, key=call.key or "anonymous", model=call.model,
            deployment=call.deployment, route=call.route, endpoint=call.endpoint, status=status,
            error_code=error_code, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
            cost=cost, latency_ms=round(elapsed * 1000, 2),
            ttft_ms=round(call.first_token_s * 1000, 2) if call.first_token_s is not None else None,
            server_tool_calls=call.server_tool_calls, stream=call.stream, face=call.face, error_class=klass))
    _metrics(svc, call, status, prompt, completion, cached, cost, elapsed)
    if klass is not None:
        svc.metrics.inc("litegate_request_errors_total", (
            ("model", call.model or "unknown"), ("key", call.key or "anonymous"), ("class", klass),
            ("code", error_code or str(status))))


def _metrics(svc: Services, call: Call, status: int, prompt: int, completion: int, cached: int, cost: float,
             elapsed: float) -> None:
    m = svc.metrics
    model, key = call.model or "unknown", call.key or "anonymous"
    m.inc("litegate_requests_total", (("model", model), ("deployment", call.deployment or ""), ("key", key),
                                      ("status", str(status)), ("face", call.face)))
    for kind, n in (("prompt", prompt), ("completion", completion), ("cached", cached)):
        if n:
            m.inc("litegate_tokens_total", (("model", model), ("key", key), ("type", kind)), n)
    if cost:
        m.inc("litegate_cost_usd_total", (("model", model), ("key", key)), cost)
    if call.route and ("fallback" in call.route or "retry" in call.route or "context" in call.route):
        m.inc("litegate_fallbacks_total", (("model", model), ("route", call.route)))
    m.observe("litegate_request_duration_seconds", (("model", model),), elapsed)
    if call.first_token_s is not None:
        m.observe("litegate_time_to_first_token_seconds", (("model", model),), call.first_token_s)
