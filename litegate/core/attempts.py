"""Running a plan's attempts: a slot on each deployment, the call, and what its outcome teaches.

`walk()` goes through router.attempts in order: it takes a slot on the deployment (bounded
queue), makes the attempt, reports success or failure to Backends (latency, cooldown) and
backs off before the next try. Retries and fallbacks happen only until an answer has begun:
`request()` for a whole reply, `stream()` until the first event of a streamed one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TypeVar

from litegate import upstream
from litegate.config import Config, Deployment
from litegate.core import router
from litegate.core.services import Call, Plan, Services
from litegate.errors import GatewayError, UpstreamError, UpstreamUnavailable
from litegate.providers import PROVIDERS, Provider, UpstreamRequest
from litegate.wire import ChatCompletion, ChatRequest, StreamEvent

T = TypeVar("T")
Build = Callable[[Deployment, Provider], Awaitable[UpstreamRequest]]


async def walk(svc: Services, call: Call, plan: Plan, attempt: Callable[[Deployment, Provider], Awaitable[T]], *,
               hold: AsyncExitStack | None = None) -> T:
    """Try attempts in order until one succeeds; `hold` keeps the deployment's slot until it closes."""
    last: GatewayError | None = None
    cfg = call.cfg
    for att in router.attempts(cfg, plan.model, plan.route, svc.rng, state=svc.backends.view(),
                               now=svc.backends.clock(), tokens=plan.tokens):
        if last is not None:
            pause = _backoff(cfg, att.retry, last)
            call.backoff_s += pause
            await asyncio.sleep(pause)
        call.attempt = att
        d = att.deployment
        t0 = time.perf_counter()
        try:
            lease = await svc.backends.acquire(d, d.timeouts.first_token_s)
        except GatewayError as e:
            call.tried.append(d.id)
            last = e
            continue
        try:
            result = await attempt(d, PROVIDERS[d.provider])
        except GatewayError as e:
            lease.release()
            svc.backends.failed(cfg, d, e)
            call.tried.append(d.id)
            if not (e.retryable or e.code == "context_length_exceeded"):  # a bigger model may take it
                raise
            last = e
            continue
        except BaseException:
            lease.release()
            raise
        svc.backends.succeeded(d, (time.perf_counter() - t0) * 1000)
        if hold is None:
            lease.release()
        else:
            hold.callback(lease.release)
        return result
    if last is None:
        raise UpstreamUnavailable(f"no deployment of '{plan.model}' or its fallbacks can take this request")
    others = [d for d in dict.fromkeys(call.tried) if d != call.deployment]  # the last one names itself
    if others:
        last.message = f"{last.message} (also tried: {', '.join(others)})"
    raise last


def _backoff(cfg: Config, retry: int, err: GatewayError) -> float:
    base = cfg.router.retry_backoff_s * (2 ** max(0, retry - 1)) if retry else 0.0
    return min(max(base, err.retry_after or 0.0), 10.0)


async def request(svc: Services, call: Call, plan: Plan, build: Build,
                  parse: Callable[[Provider, bytes, Deployment], T]) -> T:
    """One whole reply: build the upstream request, send it, parse the body; retried as the plan allows."""

    async def attempt(d: Deployment, p: Provider) -> T:
        ureq = await build(d, p)
        body = await call.waiting(upstream.send(svc.pool, ureq, d.timeouts, p.parse_error, d.id,
                                                _reply_cap(call)))
        try:
            return parse(p, body, d)
        except GatewayError as e:
            raise named(d, e) from None
        except Exception as e:  # a value the provider could not make sense of is the backend's fault
            raise unreadable(d, e) from None

    return await walk(svc, call, plan, attempt)


async def stream(svc: Services, call: Call, plan: Plan, build: Build,
                 parse: Callable[[Provider, AsyncIterator[bytes], Deployment], AsyncIterator]
                 ) -> AsyncIterator[StreamEvent]:
    """The events of the first deployment that answers (parse(p, frames, d) reads them). Its connection
    and slot are held until this generator ends or is closed (aclosing); after the first event a value
    the provider could not make sense of (a bug's exception) is an upstream error naming the deployment,
    like any other fault of its stream."""

    async def attempt(d: Deployment, p: Provider) -> tuple[AsyncIterator[StreamEvent], StreamEvent, Deployment]:
        mine = AsyncExitStack()
        try:
            ureq = await build(d, p)
            frames = await call.waiting(mine.enter_async_context(
                upstream.open_stream(svc.pool, ureq, d.timeouts, p.parse_error, d.id, p.framing,
                                     _reply_cap(call))))
            events = parse(p, frames, d)
            mine.push_async_callback(events.aclose)
            first = await call.waiting(events.__anext__())
        except StopAsyncIteration:
            await mine.aclose()
            raise GatewayError(f"deployment {d.id} sent an empty stream", status=502, retryable=True) from None
        except GatewayError as e:
            await mine.aclose()
            raise named(d, e) from None
        except Exception as e:  # a value the provider could not make sense of is the backend's fault
            await mine.aclose()
            raise unreadable(d, e) from None
        except BaseException:
            await mine.aclose()
            raise
        stack.push_async_exit(mine)
        return events, first, d

    async with AsyncExitStack() as stack:
        events, first, d = await walk(svc, call, plan, attempt, hold=stack)
        yield first
        try:
            async for ev in events:
                yield ev
        except GatewayError as e:
            raise named(d, e) from None
        except Exception as e:
            raise unreadable(d, e) from None


def _reply_cap(call: Call) -> int:
    return int(call.cfg.server.max_upstream_reply_mb * (1 << 20))


def named(d: Deployment, e: GatewayError) -> GatewayError:
    """A backend's fault says which deployment it was (providers do not always know to)."""
    if isinstance(e, UpstreamError) and d.id not in e.message:
        e.message = f"deployment {d.id}: {e.message}"
    return e


def unreadable(d: Deployment, e: Exception) -> UpstreamError:
    return UpstreamError(f"deployment {d.id} sent a reply litegate could not read ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]})")


async def complete(svc: Services, call: Call, plan: Plan, req: ChatRequest) -> ChatCompletion:
    """A plain chat call with no images to fetch and no provider memo (the classifier's)."""

    async def build(d: Deployment, p: Provider) -> UpstreamRequest:
        return p.build_chat(req, d, {})

    return await request(svc, call, plan, build, lambda p, body, d: p.parse_chat(body, d))
