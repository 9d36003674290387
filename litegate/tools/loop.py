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

from litegate.core.events import ToolCallParts, ToolCalls
from litegate.errors import GatewayError
from litegate.providers.messages import text_of
from litegate.wire import (
    Annotation, ChatRequest, Citations, Finish, FunctionCall, Message, ReasoningDelta, ServerToolCall,
    ServerToolResult, Started, StreamEvent, TextDelta, Tool, ToolCall, ToolCallDelta, UrlCitation, Usage, UsageEvent,
)
from litegate.tools.run import DEFINITIONS, Kit, Outcome, execute

CallModel = Callable[[ChatRequest], AsyncIterator[StreamEvent]]
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
    __slots__ = ("text", "calls", "finish")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls = ToolCalls()
        self.finish: str | None = None


def _canonical(name: str, arguments: str) -> str:
    try:
        return name + orjson.dumps(orjson.loads(arguments or "{}"), option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONDecodeError:
        return name + arguments


async def run(req: ChatRequest, names: tuple[str, ...], *, call_model: CallModel, kit: Kit,
              remember: Callable[[str, dict], None], max_rounds: int,
              on_tool_calls: Callable[[int], None]) -> AsyncIterator[StreamEvent]:
    """Yield the StreamEvents of one tool-using answer, for the client."""
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
            async for ev in _one_round(call_model(round_req), rnd, usage, text_sent):
                yield ev
        except GatewayError as e:
            if round_no == 0 and e.code == "tools_unsupported" and "web_search" in server and not declared \
                    and kit.cfg.web_search and kit.cfg.web_search.no_tools_fallback == "inject":
                async for ev in _inject(req, call_model, kit, usage, sources, text_sent, on_tool_calls):
                    yield ev
                return
            raise
        mine = [c for c in rnd.calls.in_order() if c.name in server]
        theirs = [c for c in rnd.calls.in_order() if c.name not in server]
        if not mine or final:
            for i, c in enumerate(theirs):
                yield ToolCallDelta(i, c.arguments, c.id, c.name, c.extra)
            for ev in closing(rnd.finish, bool(theirs), usage, sources, "".join(text_sent)):
                yield ev
            return
        keys = [_canonical(c.name, c.arguments) for c in mine]
        if all(k in seen for k in keys):
            final = True  # the model is repeating itself: make it answer
            continue
        seen.update(keys)
        yield Started()
        for c in mine:
            yield ServerToolCall(c.id or "", c.name, c.arguments)
        outcomes: list[Outcome] = await asyncio.gather(*(execute(kit, c.name, c.arguments) for c in mine))
        on_tool_calls(len(mine))
        for c, o in zip(mine, outcomes):
            yield _result(c.id or "", c.name, o)
            sources += [s for s in o.sources if s not in sources]
            if c.extra:
                remember(c.id, c.extra)
        turn = _turn(rnd, mine, outcomes)
        messages += turn
        if theirs:  # the client's calls go back to it; the server turn waits in the memo for its follow-up
            stash = {"calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in mine],
                     "results": [{"id": c.id, "content": o.text} for c, o in zip(mine, outcomes)]}
            for i, c in enumerate(theirs):
                extra = {**(c.extra or {}), **({STASH: stash} if i == 0 else {})}
                yield ToolCallDelta(i, c.arguments, c.id, c.name, extra)
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


def _result(call_id: str, name: str, o: Outcome) -> ServerToolResult:
    if not o.ok:
        return ServerToolResult(call_id, name, error=o.text)
    return ServerToolResult(call_id, name, [{"url": url, "title": title, "snippet": snippet}
                                            for url, title, snippet in o.results])


async def _one_round(events: AsyncIterator[StreamEvent], rnd: _Round, usage: Usage,
                     text_sent: list[str]) -> AsyncIterator[StreamEvent]:
    """One model call's events: text and reasoning pass on (text also kept for the round and the whole
    answer), tool calls are held in the round, usage is summed over the rounds."""
    async for ev in events:
        t = type(ev)
        if t in (ReasoningDelta, Started):
            yield ev
        elif t is TextDelta:
            rnd.text.append(ev.text)
            text_sent.append(ev.text)
            yield ev
        elif t is ToolCallDelta:
            rnd.calls.add(ev)
        elif t is UsageEvent:
            usage.prompt_tokens += ev.usage.prompt_tokens
            usage.completion_tokens += ev.usage.completion_tokens
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        elif t is Finish:
            rnd.finish = ev.reason


def _turn(rnd: _Round, mine: list[ToolCallParts], outcomes: list[Outcome]) -> list[Message]:
    calls = [ToolCall(FunctionCall(c.name, c.arguments), c.id) for c in mine]
    turn = [Message("assistant", "".join(rnd.text) or None, tool_calls=calls)]
    return turn + [Message("tool", o.text, tool_call_id=c.id) for c, o in zip(mine, outcomes)]


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


async def _inject(req: ChatRequest, call_model: CallModel, kit: Kit, usage: Usage, sources: list,
                  text_sent: list[str], on_tool_calls) -> AsyncIterator[StreamEvent]:
    """For a model that cannot call tools: search the user's question first and hand it the results."""
    question = next((text_of(m.content) for m in reversed(req.messages) if m.role == "user"), "")
    yield Started()
    arguments = orjson.dumps({"query": question[:300]}).decode()
    yield ServerToolCall("ws_inject", "web_search", arguments)
    outcome = await execute(kit, "web_search", arguments)
    yield _result("ws_inject", "web_search", outcome)
    on_tool_calls(1)
    sources += outcome.sources
    note = Message("system", "Web search results for the user's latest question follow. Use them if they help, "
                             "and cite the links you use.\n" + outcome.text)
    rnd = _Round()
    inject_req = msgspec.structs.replace(req, messages=list(req.messages[:-1]) + [note, req.messages[-1]], tools=None)
    async for ev in _one_round(call_model(inject_req), rnd, usage, text_sent):
        yield ev
    for ev in closing(rnd.finish, False, usage, sources, "".join(text_sent)):
        yield ev
