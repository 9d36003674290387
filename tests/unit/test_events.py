"""core/events.py: tool calls assembled from fragments in any order, and the Aggregator that
turns a stream of events into one whole ChatCompletion."""

from __future__ import annotations

import itertools

import pytest
from msgspec import UNSET

from litegate.core.events import Aggregator, ToolCalls
from litegate.wire import (
    Annotation, Citations, Finish, ReasoningDelta, Started, TextDelta, ToolCallDelta, Usage, UsageEvent, UrlCitation,
)

FRAGMENTS = [
    ToolCallDelta(0, '{"city": ', id="call_a", name="weather"),
    ToolCallDelta(1, "", id="call_b", name="time"),
    ToolCallDelta(0, '"Paris"}'),
    ToolCallDelta(1, '{"tz": "CET"}'),
]


def assemble(fragments) -> list[tuple[str | None, str, str]]:
    calls = ToolCalls()
    for f in fragments:
        calls.add(f)
    return [(c.id, c.name, c.arguments) for c in calls.in_order()]


def test_tool_calls_from_interleaved_fragments():
    """ToolCalls: fragments of two calls interleaved are joined per index; id and name come from the first."""
    assert assemble(FRAGMENTS) == [("call_a", "weather", '{"city": "Paris"}'), ("call_b", "time", '{"tz": "CET"}')]


@pytest.mark.parametrize("order", [(1, 3, 0, 2), (3, 2, 1, 0), (1, 0, 3, 2)])
def test_tool_calls_ordered_by_index_whatever_arrives_first(order):
    """ToolCalls.in_order: calls come out by index even when a higher index's fragments arrive first."""
    got = assemble(FRAGMENTS[i] for i in order)
    assert [(i, n) for i, n, _ in got] == [("call_a", "weather"), ("call_b", "time")]


def test_tool_call_id_and_name_kept_from_first_fragment():
    """ToolCalls: a later fragment's id or name does not replace the first's; a late id fills a missing one."""
    got = assemble([ToolCallDelta(0, "{", name="first"), ToolCallDelta(0, "}", id="late_id", name="second")])
    assert got == [("late_id", "first", "{}")]


def test_tool_call_without_arguments_is_empty_object():
    """ToolCallParts.arguments: a call with no argument text is "{}", valid JSON for the client."""
    assert assemble([ToolCallDelta(0, "", id="c", name="now")]) == [("c", "now", "{}")]


def test_tool_call_extra_is_merged():
    """ToolCalls: provider state (`extra`) from several fragments is merged onto the call."""
    calls = ToolCalls()
    calls.add(ToolCallDelta(0, "", id="c", name="f", extra={"sig": "abc"}))
    calls.add(ToolCallDelta(0, "{}", extra={"more": 1}))
    assert calls and calls.in_order()[0].extra == {"sig": "abc", "more": 1}
    assert not ToolCalls()


# ---------------------------------------------------------------- Aggregator
def aggregate(*events, reasoning: bool = True):
    agg = Aggregator(reasoning=reasoning)
    for ev in events:
        agg.feed(ev)
    return agg.result("my-model", id="chatcmpl-1")


def test_aggregator_text_and_reasoning():
    """Aggregator: text deltas join into content, reasoning deltas into reasoning_content; finish and usage kept."""
    usage = Usage.of(12, 5)
    r = aggregate(Started(), ReasoningDelta("think "), TextDelta("Hel"), ReasoningDelta("more"), TextDelta("lo"),
                  Finish("length"), UsageEvent(usage))
    msg = r.choices[0].message
    assert (r.id, r.model, msg.content, msg.reasoning_content) == ("chatcmpl-1", "my-model", "Hello", "think more")
    assert r.choices[0].finish_reason == "length" and r.usage == usage
    assert msg.tool_calls is UNSET and r.memo is UNSET


def test_aggregator_drops_reasoning_when_off():
    """Aggregator(reasoning=False): reasoning deltas do not reach the reply."""
    assert aggregate(ReasoningDelta("secret"), TextDelta("hi"), reasoning=False).choices[0].message.reasoning_content \
        is UNSET


def test_aggregator_tool_calls():
    """Aggregator: tool calls in index order, "{}" for none, content None, finish tool_calls, memo by call id."""
    r = aggregate(ToolCallDelta(1, "", id="c2", name="now", extra={"sig": "s2"}),
                  ToolCallDelta(0, '{"q":', id="c1", name="search"), ToolCallDelta(0, '"x"}'), Finish("stop"))
    msg = r.choices[0].message
    assert [(c.id, c.function.name, c.function.arguments, c.type) for c in msg.tool_calls] == [
        ("c1", "search", '{"q":"x"}', "function"), ("c2", "now", "{}", "function")]
    assert msg.content is None and r.choices[0].finish_reason == "tool_calls"
    assert r.memo == {"c2": {"sig": "s2"}}


@pytest.mark.parametrize("events, reason", [
    ([TextDelta("hi")], "stop"),
    ([ToolCallDelta(0, "{}", id="c", name="f")], "tool_calls"),
    ([TextDelta("hi"), Finish("length")], "length"),
    ([ToolCallDelta(0, "{}", id="c", name="f"), Finish("stop")], "tool_calls"),
    ([TextDelta("hi"), Finish("content_filter"), Finish(None)], "content_filter"),
], ids=["no-finish", "no-finish-tools", "length", "stop-with-tools", "none-keeps-earlier"])
def test_aggregator_finish_reason(events, reason):
    """Aggregator: the backend's finish reason, "stop" by default, "tool_calls" when the answer calls tools."""
    assert aggregate(*events).choices[0].finish_reason == reason


def test_aggregator_empty_answer():
    """Aggregator: no events at all is an empty "" answer with zero usage, not null content."""
    r = aggregate()
    assert r.choices[0].message.content == "" and r.usage == Usage() and r.choices[0].finish_reason == "stop"


def test_aggregator_text_beside_tool_calls_is_kept():
    """Aggregator: text said before a tool call stays as content beside the calls."""
    msg = aggregate(TextDelta("Let me look."), ToolCallDelta(0, "{}", id="c", name="f")).choices[0].message
    assert msg.content == "Let me look." and len(msg.tool_calls) == 1


def test_aggregator_citations_become_annotations():
    """Aggregator: Citations events from each round add up into the message's annotations, in order."""
    a1 = Annotation(UrlCitation("https://a.example", "A"))
    a2 = Annotation(UrlCitation("https://b.example", "B"))
    r = aggregate(TextDelta("x"), Citations([a1]), Citations([a2]))
    assert r.choices[0].message.annotations == [a1, a2]


def test_aggregator_id_defaults_to_a_fresh_one():
    """Aggregator.result: without an id each result gets a new chatcmpl- id."""
    ids = {Aggregator().result("m").id for _ in range(3)}
    assert len(ids) == 3 and all(i.startswith("chatcmpl-") for i in ids)


def test_every_fragment_order_assembles_the_same():
    """ToolCalls: every interleaving of two calls' fragments (each call's own kept in order) gives the same calls."""
    expected = assemble(FRAGMENTS)
    orders = [p for p in itertools.permutations(range(4)) if p.index(0) < p.index(2) and p.index(1) < p.index(3)]
    assert len(orders) == 6
    for p in orders:
        assert assemble(FRAGMENTS[i] for i in p) == expected, p
