"""The server-side tool loop: litegate gives the model tools the client never declared
(web_search, fetch_url), runs the calls the model makes, feeds the results back, and lets the
final answer stream to the client as if the model had known it all along.

Per round: the model's text streams straight through; its tool calls are held back. Server
calls run concurrently (keep-alives flow meanwhile), their results are appended as an assistant
turn plus tool messages (each provider translates them into its native format), and the model
is called again, up to web_search.max_rounds. A repeated identical call, or the ceiling, ends
the loop with one last round in which the model must answer with what it has. Client tool calls
go back to the client untouched (re-indexed); server calls of that same turn are run first and
stashed under the client call's id, to be put back into the history on the follow-up request.
The client never sees a server tool call, a server tool message or a tool it did not declare.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import orjson

from ..errors import GatewayError
from ..providers.messages import text_of
from ..wire import (
    Annotation, ChatRequest, Citations, Finish, FunctionCall, Message, ReasoningDelta, Started,
    StreamEvent, TextDelta, Tool, ToolCall, ToolCallDelta, UrlCitation, Usage, UsageEvent,
)
from .run import DEFINITIONS, Kit, Outcome, execute

CallModel = Callable[[ChatRequest], AsyncIterator[Any]]
STASH = "litegate_server_turn"
FINAL_NOTE = ("You have used the web tools as much as allowed. Answer the user now with the information "
              "you already have; do not call any tool.")


def expand_history(req: ChatRequest, memo_get: Callable[[str], Any]) -> ChatRequest:
    """Put back the server turns stashed under client tool-call ids (server calls ran beside them)."""
    out: list[Message] = []
    changed = False
    for m in req.messages:
        stash = next((memo_get(c.id).get(STASH) for c in m.tool_calls or ()
                      if c.id and isinstance(memo_get(c.id), dict) and memo_get(c.id).get(STASH)), None)
        if m.role != "assistant" or stash is None:
            out.append(m)
            continue
        changed = True
        calls = [ToolCall(FunctionCall(c["name"], c["arguments"]), c["id"]) for c in stash["calls"]]
        out.append(msgspec.structs.replace(m, tool_calls=calls + list(m.tool_calls or ())))
        out += [Message("tool", r["content"], tool_call_id=r["id"]) for r in stash["results"]]
    return msgspec.structs.replace(req, messages=out) if changed else req


class _Round:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None

    def add_call(self, ev: ToolCallDelta) -> None:
        call = self.calls.setdefault(ev.index, {"id": ev.id, "name": ev.name or "", "args": [], "extra": None})
        call["id"] = call["id"] or ev.id
        call["name"] = call["name"] or ev.name or ""
        call["args"].append(ev.arguments)
        if ev.extra:
            call["extra"] = {**(call["extra"] or {}), **ev.extra}


def _canonical(name: str, arguments: str) -> str:
    try:
        return name + orjson.dumps(orjson.loads(arguments or "{}"), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return name + arguments


async def run(req: ChatRequest, names: list[str], *, call_model: CallModel, kit: Kit,
              remember: Callable[[str, dict], None], keepalive: Any, keepalive_s: float,
              max_rounds: int, on_tool_calls: Callable[[int], None]) -> AsyncIterator[Any]:
    """Yield StreamEvents for the client (and `keepalive` while waiting) for one tool-using answer."""
    declared = {t.function.name for t in req.tools or ()}
    server = [n for n in names if n not in declared]
    tools = list(req.tools or ()) + [msgspec.convert(DEFINITIONS[n], Tool) for n in server]
    messages, usage, sources, seen = list(req.messages), Usage(), [], set()
    final, text_sent = False, []
    for round_no in range(max_rounds + 1):
        final = final or round_no == max_rounds
        round_req = _round_request(req, messages, tools, server, final)
        rnd = _Round()
        try:
            async for ev in _one_round(call_model(round_req), rnd, keepalive, usage):
                if type(ev) is TextDelta:
                    text_sent.append(ev.text)
                yield ev
        except GatewayError as e:
            if round_no == 0 and e.code == "tools_unsupported" and "web_search" in server and not declared \
                    and kit.cfg.web_search and kit.cfg.web_search.no_tools_fallback == "inject":
                async for ev in _inject(req, call_model, kit, keepalive, keepalive_s, usage, sources, text_sent,
                                        on_tool_calls):
                    yield ev
                return
            raise
        mine = [c for c in rnd.calls.values() if c["name"] in server]
        theirs = [c for c in rnd.calls.values() if c["name"] not in server]
        if not mine or final:
            for i, c in enumerate(theirs):
                yield ToolCallDelta(i, "".join(c["args"]) or "{}", c["id"], c["name"], c["extra"])
            for ev in closing(rnd.finish, bool(theirs), usage, sources, "".join(text_sent)):
                yield ev
            return
        keys = [_canonical(c["name"], "".join(c["args"])) for c in mine]
        if all(k in seen for k in keys):
            final = True  # the model is repeating itself: make it answer
            continue
        seen.update(keys)
        yield Started()
        outcomes: list[Outcome] = []
        async for item in waiting(asyncio.gather(*(execute(kit, c["name"], "".join(c["args"])) for c in mine)),
                                   keepalive, keepalive_s):
            if type(item) is Done:
                outcomes = item.value
            else:
                yield item
        on_tool_calls(len(mine))
        for c, o in zip(mine, outcomes):
            sources += [s for s in o.sources if s not in sources]
            if c["extra"]:
                remember(c["id"], c["extra"])
        turn = _turn(rnd, mine, outcomes)
        messages += turn
        if theirs:  # the client's calls go back to it; the server turn waits in the memo for its follow-up
            stash = {"calls": [{"id": c["id"], "name": c["name"], "arguments": "".join(c["args"]) or "{}"}
                               for c in mine],
                     "results": [{"id": c["id"], "content": o.text} for c, o in zip(mine, outcomes)]}
            for i, c in enumerate(theirs):
                extra = {**(c["extra"] or {}), **({STASH: stash} if i == 0 else {})}
                yield ToolCallDelta(i, "".join(c["args"]) or "{}", c["id"], c["name"], extra)
            for ev in closing("tool_calls", True, usage, sources, "".join(text_sent)):
                yield ev
            return


def _round_request(req: ChatRequest, messages: list[Message], tools: list[Tool], server: list[str],
                   final: bool) -> ChatRequest:
    if not final:
        return msgspec.structs.replace(req, messages=messages, tools=tools)
    client_tools = [t for t in tools if t.function.name not in server] or None
    return msgspec.structs.replace(req, messages=messages + [Message("system", FINAL_NOTE)], tools=client_tools,
                                   tool_choice=req.tool_choice if client_tools else None)


async def _one_round(events: AsyncIterator[Any], rnd: _Round, keepalive: Any, usage: Usage) -> AsyncIterator[Any]:
    async for ev in events:
        t = type(ev)
        if ev is keepalive or t in (ReasoningDelta, Started):
            yield ev
        elif t is TextDelta:
            rnd.text.append(ev.text)
            yield ev
        elif t is ToolCallDelta:
            rnd.add_call(ev)
        elif t is UsageEvent:
            usage.prompt_tokens += ev.usage.prompt_tokens
            usage.completion_tokens += ev.usage.completion_tokens
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        elif t is Finish:
            rnd.finish = ev.reason


class Done:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def waiting(aw, keepalive: Any, every: float) -> AsyncIterator[Any]:
    """Yield `keepalive` every `every` seconds until `aw` is done, then Done(result)."""
    task = asyncio.ensure_future(aw)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                yield Done(task.result())
                return
            yield keepalive
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _turn(rnd: _Round, mine: list[dict], outcomes: list[Outcome]) -> list[Message]:
    calls = [ToolCall(FunctionCall(c["name"], "".join(c["args"]) or "{}"), c["id"]) for c in mine]
    turn = [Message("assistant", "".join(rnd.text) or None, tool_calls=calls)]
    return turn + [Message("tool", o.text, tool_call_id=c["id"]) for c, o in zip(mine, outcomes)]


def closing(reason: str | None, tool_calls: bool, usage: Usage, sources: list[tuple[str, str]],
            text: str) -> list[StreamEvent]:
    """The last events of a looped answer: citations, usage summed over every round, finish."""
    out: list[StreamEvent] = []
    if sources:
        out.append(Citations([_citation(url, title, text) for url, title in sources]))
    out.append(UsageEvent(usage))
    out.append(Finish("tool_calls" if tool_calls else (reason or "stop")))
    return out


def _citation(url: str, title: str, text: str) -> Annotation:
    at = text.find(url)
    start, end = (at, at + len(url)) if at >= 0 else (0, len(text))
    return Annotation(UrlCitation(url=url, title=title or url, start_index=start, end_index=end))


async def _inject(req: ChatRequest, call_model: CallModel, kit: Kit, keepalive: Any, keepalive_s: float,
                  usage: Usage, sources: list, text_sent: list[str], on_tool_calls) -> AsyncIterator[Any]:
    """For a model that cannot call tools: search the user's question first and hand it the results."""
    question = next((text_of(m.content) for m in reversed(req.messages) if m.role == "user"), "")
    yield Started()
    outcome = Outcome("", False)
    async for item in waiting(execute(kit, "web_search", orjson.dumps({"query": question[:300]}).decode()),
                               keepalive, keepalive_s):
        if type(item) is Done:
            outcome = item.value
        else:
            yield item
    on_tool_calls(1)
    sources += outcome.sources
    note = Message("system", "Web search results for the user's latest question follow. Use them if they help, "
                             "and cite the links you use.\n" + outcome.text)
    rnd = _Round()
    inject_req = msgspec.structs.replace(req, messages=list(req.messages[:-1]) + [note, req.messages[-1]], tools=None)
    async for ev in _one_round(call_model(inject_req), rnd, keepalive, usage):
        if type(ev) is TextDelta:
            text_sent.append(ev.text)
        yield ev
    for ev in closing(rnd.finish, False, usage, sources, "".join(text_sent)):
        yield ev


def server_tools(model_tools: tuple[str, ...], req: ChatRequest, search_configured: bool) -> list[str]:
    """The server tools for this request: the model's, plus web_search when the client asks for it."""
    names = list(model_tools)
    if req.web_search_options is not None and "web_search" not in names and search_configured:
        names.append("web_search")
    return names

