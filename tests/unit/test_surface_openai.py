"""surfaces/openai.py: the OpenAI face's stream writers (ChunkWriter, CompletionWriter), whole
replies and errors, checked frame by frame."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import msgspec
import pytest

from litegate.core.events import Aggregator
from litegate.errors import ModelNotFound, RateLimited, StreamInterrupted
from litegate.surfaces.openai import (
    DONE, EmbeddingList, ChunkWriter, CompletionWriter, chat_reply, embeddings_reply, render_error,
)
from litegate.wire import (
    Annotation, Citations, Finish, ReasoningDelta, Started, TextDelta, ToolCallDelta, Usage, UsageEvent, UrlCitation,
    Vectors,
)


def frames(raw: list[bytes]) -> list[Any]:
    """Each SSE frame as JSON (or "[DONE]"); every frame must be exactly one `data:` event."""
    out = []
    for f in raw:
        assert f.startswith(b"data: ") and f.endswith(b"\n\n") and f.count(b"\n\n") == 1, f
        payload = f[6:-2]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out


def run(writer, *events) -> list[Any]:
    raw: list[bytes] = []
    for ev in events:
        raw += writer.feed(ev)
    return frames(raw + writer.finish())


def deltas(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]]


# ---------------------------------------------------------------- ChunkWriter
def test_role_chunk_first_with_empty_content():
    """ChunkWriter: Started sends the role chunk at once, with content "" (as OpenAI does), then text without role."""
    w = ChunkWriter("m", include_usage=False)
    out = run(w, Started(), TextDelta("Hi"))
    assert deltas(out)[:2] == [{"role": "assistant", "content": ""}, {"content": "Hi"}]
    assert out[0]["object"] == "chat.completion.chunk" and out[0]["model"] == "m"


def test_role_rides_on_the_first_content():
    """ChunkWriter: without Started, the role goes on the first delta that has content; only once."""
    out = run(ChunkWriter("m", include_usage=False), TextDelta("a"), TextDelta("b"))
    assert deltas(out)[:2] == [{"role": "assistant", "content": "a"}, {"content": "b"}]


def test_empty_stream_still_has_role_and_finish():
    """ChunkWriter: an answer with no events is a role chunk, a finish chunk (stop), [DONE]."""
    out = run(ChunkWriter("m", include_usage=False))
    assert deltas(out) == [{"role": "assistant", "content": ""}, {}]
    assert out[1]["choices"][0]["finish_reason"] == "stop" and out[-1] == "[DONE]" and len(out) == 3


def test_finish_is_a_separate_chunk_with_empty_delta():
    """ChunkWriter: finish_reason is null on content chunks and arrives alone, on an empty delta, after them."""
    out = run(ChunkWriter("m", include_usage=False), TextDelta("x"), Finish("length"), TextDelta("y"))
    chunks = out[:-1]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "length"]
    assert chunks[-1]["choices"][0]["delta"] == {} and out[-1] == "[DONE]"


def test_tool_call_id_and_name_on_first_fragment_only():
    """ChunkWriter: a tool call's id, type and name go on its first fragment; later fragments carry arguments only."""
    out = run(ChunkWriter("m", include_usage=False),
              ToolCallDelta(0, "", id="call_1", name="weather"), ToolCallDelta(0, '{"city":'),
              ToolCallDelta(0, '"Oslo"}'),
              ToolCallDelta(1, "{}", id="call_2", name="time"), Finish("stop"))
    calls = [d["tool_calls"][0] for d in deltas(out) if "tool_calls" in d]
    assert calls == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": '"Oslo"}'}},
        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    assert deltas(out)[0]["role"] == "assistant" and "content" not in deltas(out)[0]


@pytest.mark.parametrize("events, reason", [
    ([TextDelta("x")], "stop"),
    ([ToolCallDelta(0, "{}", id="c", name="f")], "tool_calls"),
    ([ToolCallDelta(0, "{}", id="c", name="f"), Finish("stop")], "tool_calls"),
    ([TextDelta("x"), Finish("length")], "length"),
    ([TextDelta("x"), Finish("content_filter"), Finish(None)], "content_filter"),
])
def test_final_finish_reason(events, reason):
    """ChunkWriter: the finish chunk says the backend's reason, "tool_calls" when it called tools, else "stop"."""
    out = run(ChunkWriter("m", include_usage=False), *events)
    assert out[-2]["choices"][0]["finish_reason"] == reason


def test_usage_chunk_exactly_once_when_asked():
    """ChunkWriter(include_usage): usage null on every chunk, then one usage chunk with no choices, before [DONE]."""
    usage = Usage.of(10, 3)
    out = run(ChunkWriter("m", include_usage=True), TextDelta("a"), UsageEvent(Usage.of(1, 1)), UsageEvent(usage),
              Finish("stop"))
    with_usage = [c for c in out[:-1] if c["usage"] is not None]
    assert len(with_usage) == 1 and with_usage[0] is out[-2]
    assert with_usage[0]["choices"] == [] and with_usage[0]["usage"] == msgspec.to_builtins(usage)
    assert all("usage" in c and c["usage"] is None for c in out[:-2]) and out[-1] == "[DONE]"


def test_usage_chunk_zero_when_backend_sent_none():
    """ChunkWriter(include_usage): a backend that reports no usage still gives the client its one usage chunk."""
    out = run(ChunkWriter("m", include_usage=True), TextDelta("a"))
    assert out[-2]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_no_usage_unless_asked():
    """ChunkWriter without include_usage: no usage key on any chunk and no usage chunk, even if the backend sent it."""
    out = run(ChunkWriter("m", include_usage=False), TextDelta("a"), UsageEvent(Usage.of(5, 5)))
    chunks = out[:-1]
    assert len(chunks) == 2 and not any("usage" in c for c in chunks)


def test_chunks_share_id_and_created():
    """ChunkWriter: every chunk of one answer has the same id and created time."""
    out = run(ChunkWriter("m", include_usage=True, id="chatcmpl-fixed"), TextDelta("a"), TextDelta("b"))
    assert {(c["id"], c["created"]) for c in out[:-1]} == {("chatcmpl-fixed", out[0]["created"])}


@pytest.mark.parametrize("reasoning, expected", [
    (True, [{"role": "assistant", "content": "", "reasoning_content": "hmm"}, {"content": "ok"}]),
    (False, [{"role": "assistant", "content": "ok"}]),
])
def test_reasoning_deltas_follow_the_setting(reasoning, expected):
    """ChunkWriter: reasoning deltas are reasoning_content chunks, or dropped when server.reasoning_content is off."""
    out = run(ChunkWriter("m", include_usage=False, reasoning=reasoning), ReasoningDelta("hmm"), TextDelta("ok"))
    assert deltas(out)[:-1] == expected


def test_empty_text_writes_nothing():
    """ChunkWriter: an empty text or reasoning delta writes no frame (no empty chunks on the wire)."""
    w = ChunkWriter("m", include_usage=False)
    assert w.feed(TextDelta("")) == [] and w.feed(ReasoningDelta("")) == []
    assert deltas(frames(w.finish()))[0] == {"role": "assistant", "content": ""}  # the role is still to be sent


def test_citations_chunk():
    """ChunkWriter: Citations become a delta with url_citation annotations."""
    ann = Annotation(UrlCitation("https://a.example", "A", 0, 5))
    out = run(ChunkWriter("m", include_usage=False), TextDelta("hello"), Citations([ann]))
    assert deltas(out)[1] == {"annotations": [{"type": "url_citation", "url_citation": {
        "url": "https://a.example", "title": "A", "start_index": 0, "end_index": 5}}]}


def test_fail_is_one_error_event_without_done():
    """ChunkWriter.fail: after the first byte an error is one data event with OpenAI's error object, no [DONE]."""
    w = ChunkWriter("m", include_usage=True)
    w.feed(TextDelta("partial"))
    out = w.fail(StreamInterrupted("backend went away"))
    assert frames(out) == [{"error": {"message": "backend went away", "type": "api_error", "param": None,
                                      "code": "stream_interrupted"}}]
    assert DONE not in out


# ---------------------------------------------------------------- CompletionWriter
def test_completion_writer_stream():
    """CompletionWriter: text_completion chunks, a finish chunk with empty text, one usage chunk if asked, [DONE]."""
    usage = Usage.of(4, 2)
    out = run(CompletionWriter("m", include_usage=True), TextDelta("Hel"), TextDelta(""), TextDelta("lo"),
              Finish("length"), UsageEvent(usage))
    chunks = out[:-1]
    assert [c["object"] for c in chunks] == ["text_completion"] * 4 and out[-1] == "[DONE]"
    assert [(c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks[:3]] == [
        ("Hel", None), ("lo", None), ("", "length")]
    assert chunks[3]["choices"] == [] and chunks[3]["usage"] == msgspec.to_builtins(usage)
    assert chunks[0]["id"].startswith("cmpl-") and len({c["id"] for c in chunks}) == 1


def test_completion_writer_defaults():
    """CompletionWriter: finish "stop" when the backend gave none; no usage key or chunk unless asked."""
    out = run(CompletionWriter("m", include_usage=False), TextDelta("x"))
    assert out[-2]["choices"][0]["finish_reason"] == "stop" and len(out) == 3
    assert not any("usage" in c for c in out[:-1])


def test_completion_writer_fail():
    """CompletionWriter.fail: one error event, no [DONE]."""
    assert frames(CompletionWriter("m", include_usage=False).fail(RateLimited("slow down"))) == [
        {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}}]


# ---------------------------------------------------------------- whole replies and errors
def test_render_error_is_openai_shape():
    """render_error: (the error's status, OpenAI's {"error": {message, type, param, code}})."""
    status, body = render_error(ModelNotFound("The model 'x' does not exist", param="model"))
    assert status == 404 and json.loads(body) == {"error": {
        "message": "The model 'x' does not exist", "type": "invalid_request_error", "param": "model",
        "code": "model_not_found"}}


def backend_reply():
    agg = Aggregator()
    for ev in (ReasoningDelta("because"), TextDelta("42"), ToolCallDelta(0, "{}", id="c", name="f", extra={"s": 1})):
        agg.feed(ev)
    return agg.result("backend-model-name", id="chatcmpl-backend")


@pytest.mark.parametrize("reasoning", [True, False])
def test_chat_reply(reasoning):
    """chat_reply: the client's model name, a fresh id, no provider memo, reasoning only when configured on."""
    reply = chat_reply(backend_reply(), "client-name", reasoning=reasoning)
    doc = json.loads(msgspec.json.encode(reply))
    assert doc["model"] == "client-name" and doc["id"].startswith("chatcmpl-") and doc["id"] != "chatcmpl-backend"
    assert "memo" not in doc
    assert doc["choices"][0]["message"].get("reasoning_content") == ("because" if reasoning else None)
    assert doc["choices"][0]["message"]["content"] == "42"


def test_embeddings_reply_float_and_base64():
    """embeddings_reply: floats as a list, or little-endian float32 base64 when asked; usage from the backend."""
    vectors = Vectors([[0.5, -1.0], [2.0, 0.25]], prompt_tokens=7)
    floats = json.loads(msgspec.json.encode(embeddings_reply(vectors, "emb", "float")))
    assert [d["embedding"] for d in floats["data"]] == [[0.5, -1.0], [2.0, 0.25]]
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7} and floats["model"] == "emb"
    b64 = embeddings_reply(vectors, "emb", "base64")
    assert struct.unpack("<2f", base64.b64decode(b64.data[1].embedding)) == (2.0, 0.25)


def test_embedding_list_is_a_typed_shape():
    """EmbeddingList's field types resolve (msgspec can decode and describe it), so the face's shape is checkable."""
    raw = msgspec.json.encode(embeddings_reply(Vectors([[1.0]], 1), "emb", "base64"))
    decoded = msgspec.json.decode(raw, type=EmbeddingList)
    assert base64.b64decode(decoded.data[0].embedding) == struct.pack("<f", 1.0)
    assert "EmbeddingList" in json.dumps(msgspec.json.schema(EmbeddingList))
