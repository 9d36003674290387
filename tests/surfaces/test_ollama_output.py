"""litegate.surfaces.ollama stream/reply/models: what Ollama clients read (ollama.md §8.2-§8.8).

Every line and body is also parsed with the official ollama-python types, the client most apps
copy, so a field it requires cannot go missing unnoticed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import ollama
import pytest

from litegate.errors import BadRequest, Forbidden, ModelNotFound, RateLimited, Unauthorized, UpstreamTimeout
from litegate.surfaces.ollama import SURFACE, models, reply
from litegate.surfaces.ollama.models import ModelCard, Running
from litegate.surfaces.ollama.stream import ChatStreamWriter, GenerateStreamWriter
from litegate.surfaces.ollama.timing import Timing, timestamp
from litegate.wire import (
    ChatCompletion, Choice, Finish, OutFunction, OutMessage, OutToolCall,
    ReasoningDelta, Started, TextDelta, ToolCallDelta, Usage, UsageEvent,
)

METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def run(writer, events) -> list[bytes]:
    out: list[bytes] = []
    for ev in events:
        out += writer.feed(ev)
    return out + writer.finish()


def lines(frames: list[bytes]) -> list[dict[str, Any]]:
    """NDJSON framing: each frame one JSON object ending in exactly one newline."""
    for f in frames:
        assert f.endswith(b"\n") and f.count(b"\n") == 1, f
    return [json.loads(f) for f in frames]


def test_chat_stream_lines_and_done_line():
    """Text and thinking lines carry model, created_at, done:false and an assistant message with a
    string content; the last line says done, done_reason and the six metrics as integers."""
    w = ChatStreamWriter("gpt:latest")
    got = lines(run(w, [Started(), ReasoningDelta("hmm"), TextDelta("It is"), TextDelta(""), TextDelta(" 4 C."),
                        UsageEvent(Usage.of(94, 11)), Finish("stop")]))
    assert [(l["message"].get("thinking"), l["message"]["content"]) for l in got[:-1]] == [
        ("hmm", ""), (None, "It is"), (None, " 4 C.")]
    for line in got:
        assert line["model"] == "gpt:latest" and STAMP.match(line["created_at"])
        assert line["message"]["role"] == "assistant"
        ollama.ChatResponse.model_validate(line)
    assert [l["done"] for l in got] == [False, False, False, True]
    last = got[-1]
    assert last["done_reason"] == "stop" and last["message"] == {"role": "assistant", "content": ""}
    assert all(isinstance(last[k], int) for k in METRICS)
    assert (last["prompt_eval_count"], last["eval_count"]) == (94, 11)
    assert last["total_duration"] >= last["eval_duration"] >= 0
    assert w.usage == Usage.of(94, 11)
    assert w.media_type == "application/x-ndjson" and w.keepalive == b""


@pytest.mark.parametrize("writer", [ChatStreamWriter, GenerateStreamWriter])
def test_native_lines_pass_through_untouched(writer):
    """A real Ollama's lines go out byte for byte; its done line ends the stream (no second done line)
    and its counts become the writer's usage."""
    w = writer("llama:latest")
    first = b'{"model":"llama3.1:8b","created_at":"x","message":{"role":"assistant","content":"Hi"},"done":false}'
    done = b'{"model":"llama3.1:8b","created_at":"x","done":true,"done_reason":"stop","eval_count":1}'
    frames = w.feed(first + b"\n") + w.feed(done + b"\n") + w.feed(UsageEvent(Usage.of(3, 1))) + w.finish()
    assert frames == [first + b"\n", done + b"\n"]
    assert w.usage == Usage.of(3, 1)


def test_chat_stream_tool_calls_go_out_whole_with_object_arguments():
    """Fragments of interleaved calls are buffered and sent whole, one line, arguments as objects
    ({} for none or invalid JSON); done_reason stays "stop" after tool calls, as Ollama says it."""
    w = ChatStreamWriter("m")
    got = lines(run(w, [
        ToolCallDelta(0, "", "call_a", "get_weather"), ToolCallDelta(1, "", "call_b", "get_time"),
        ToolCallDelta(0, '{"ci'), ToolCallDelta(1, ""), ToolCallDelta(0, 'ty": "Oslo"}'),
        ToolCallDelta(2, "{broken", "call_c", "bad"), Finish("tool_calls")]))
    assert len(got) == 2
    calls = got[0]["message"]["tool_calls"]
    assert calls == [{"id": "call_a", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}, "index": 0}},
                     {"id": "call_b", "function": {"name": "get_time", "arguments": {}, "index": 1}},
                     {"id": "call_c", "function": {"name": "bad", "arguments": {}, "index": 2}}]
    assert got[0]["message"]["content"] == "" and got[0]["done"] is False
    assert got[1]["done_reason"] == "stop"
    ollama.ChatResponse.model_validate(got[0])


def test_tool_calls_without_finish_are_flushed_at_the_end():
    """A stream that ends without a Finish event still hands over its calls before the done line."""
    got = lines(run(ChatStreamWriter("m"), [ToolCallDelta(0, "{}", "call_x", "f")]))
    assert got[0]["message"]["tool_calls"][0]["function"]["name"] == "f"
    assert got[1]["done"] is True


@pytest.mark.parametrize("reason,done_reason", [("stop", "stop"), ("length", "length"), ("tool_calls", "stop"),
                                                ("content_filter", "stop"), (None, "stop")])
def test_done_reason_mapping(reason, done_reason):
    """finish_reason -> done_reason (mapping.md §7.2)."""
    events = [TextDelta("x")] + ([Finish(reason)] if reason else [])
    assert lines(run(ChatStreamWriter("m"), events))[-1]["done_reason"] == done_reason
    assert lines(run(GenerateStreamWriter("m"), events))[-1]["done_reason"] == done_reason


def test_error_after_first_line_is_an_error_line_without_done():
    """Mid-stream failure: a last {"error": ...} line, no done line; ollama-python raises on it."""
    w = ChatStreamWriter("m")
    frames = w.feed(TextDelta("partial")) + w.fail(UpstreamTimeout("backend took too long"))
    got = lines(frames)
    assert got[-1] == {"error": "backend took too long"}
    assert not any(l.get("done") for l in got)


def test_generate_stream_lines():
    """/api/generate lines carry `response` (required by ollama-python) and optional thinking."""
    got = lines(run(GenerateStreamWriter("llama:latest"), [ReasoningDelta("t"), TextDelta("Blue"),
                                                           UsageEvent(Usage.of(5, 1)), Finish("length")]))
    assert [(l.get("thinking"), l["response"]) for l in got] == [("t", ""), (None, "Blue"), (None, "")]
    assert got[-1]["done"] and got[-1]["done_reason"] == "length" and got[-1]["eval_count"] == 1
    for line in got:
        ollama.GenerateResponse.model_validate(line)
        assert "message" not in line and STAMP.match(line["created_at"])


def _completion(content: str | None, calls=(), reasoning=None, reason="stop") -> ChatCompletion:
    msg = OutMessage(content=content)
    if calls:
        msg.tool_calls = list(calls)
    if reasoning:
        msg.reasoning_content = reasoning
    return ChatCompletion("id", 0, "gpt", [Choice(msg, reason)], usage=Usage.of(12, 3))


def test_whole_chat_reply():
    """stream:false: one object like a done line, with the whole message, thinking and tool calls."""
    done = _completion(None, [OutToolCall("call_1", OutFunction("get_weather", '{"city":"Oslo"}'))], "why",
                       "tool_calls")
    body = json.loads(reply.chat("gpt:latest", done, Timing()))
    assert body["message"] == {"role": "assistant", "content": "", "thinking": "why", "tool_calls": [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}, "index": 0}}]}
    assert body["done"] is True and body["done_reason"] == "stop" and body["model"] == "gpt:latest"
    assert (body["prompt_eval_count"], body["eval_count"]) == (12, 3)
    assert all(isinstance(body[k], int) for k in METRICS)
    ollama.ChatResponse.model_validate(body)


def test_whole_generate_reply():
    """stream:false generate: `response` holds the whole text; no thinking key when there was none."""
    body = json.loads(reply.generate("m", _completion("Blue.", reason="length"), Timing()))
    assert body["response"] == "Blue." and body["done_reason"] == "length" and "thinking" not in body
    ollama.GenerateResponse.model_validate(body)


@pytest.mark.parametrize("kind,reason", [("chat", "load"), ("chat", "unload"), ("generate", "load"),
                                         ("generate", "unload")])
def test_load_and_unload_replies(kind, reason):
    """Empty requests get one object with done_reason load/unload (Open WebUI parses it whole)."""
    body = json.loads(reply.loaded(kind, "m:latest", reason))
    assert body["done"] is True and body["done_reason"] == reason and body["model"] == "m:latest"
    if kind == "chat":
        assert body["message"] == {"role": "assistant", "content": ""}
        ollama.ChatResponse.model_validate(body)
    else:
        assert body["response"] == ""
        ollama.GenerateResponse.model_validate(body)


def test_embed_replies():
    """/api/embed: a list of vectors in input order; /api/embeddings: the one vector; empty input: []."""
    vectors = [[1.0, 0.0], [0.5, 0.25]]
    body = json.loads(reply.embed("e", vectors, 4, Timing()))
    assert body["embeddings"] == vectors and body["prompt_eval_count"] == 4 and body["model"] == "e"
    assert isinstance(body["total_duration"], int)
    ollama.EmbedResponse.model_validate(body)
    assert json.loads(reply.embed("e", [], 0, Timing()))["embeddings"] == []
    assert json.loads(reply.embeddings(vectors)) == {"embedding": [1.0, 0.0]}
    assert json.loads(reply.embeddings([])) == {"embedding": []}


@pytest.mark.parametrize("err,status", [(BadRequest("messages[0].role bad"), 400),
                                        (ModelNotFound("model 'x' not found"), 404),
                                        (Unauthorized("Missing API key"), 401), (Forbidden("no"), 403),
                                        (RateLimited("slow down"), 429), (UpstreamTimeout("late"), 504)])
def test_errors_are_ollama_shaped(err, status):
    """Errors are {"error": "..."} with the status class kept; ollama-python shows the text."""
    got_status, body = SURFACE.render_error(err)
    assert got_status == status and json.loads(body) == {"error": err.message}
    assert SURFACE.name == "ollama"


# ---------------------------------------------------------------- models
@pytest.mark.parametrize("name,listed", [("gpt", "gpt:latest"), ("qwen3:8b", "qwen3:8b"), ("org/model", "org/model:latest"),
                                         ("hf.co/org/m:Q4_K_M", "hf.co/org/m:Q4_K_M"), ("host:1/m", "host:1/m:latest")])
def test_names_are_listed_with_a_tag(name, listed):
    """Open WebUI needs name:tag; a name with a tag already keeps it (the tag is after the last /)."""
    assert models.tagged(name) == listed


@pytest.mark.parametrize("requested,resolved", [("gpt:latest", "gpt"), ("gpt", "gpt"), ("qwen3:8b", "qwen3:8b"),
                                                ("nope:latest", "nope:latest"), ("m:latest", "m:latest")])
def test_both_spellings_resolve(requested, resolved):
    """`gpt:latest` means the configured `gpt`; a name configured with its tag stays as written."""
    assert models.untagged(requested, {"gpt", "qwen3:8b", "m:latest"}.__contains__) == resolved


# A cloud provider's habits (usual window, chat models take images) as the catalog fills them in.
CLOUD = {"usual_context": 128_000, "vision": True}
CARDS = [ModelCard("gpt", "gpt-4o", context_length=128000, modified_at_ns=1_700_000_000_123_456_789, **CLOUD),
         ModelCard("claude", "claude-sonnet-4-5", usual_context=200_000, vision=True),
         ModelCard("llama", "llama3.1:8b", size=4_920_753_328, digest="ab" * 32,
                   details={"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"},
                   model_info={"general.architecture": "llama", "llama.context_length": 131072}),
         ModelCard("embedder", "text-embedding-3-small", **CLOUD),
         ModelCard("smart")]


def test_tags_body_has_every_field_clients_require():
    """Every entry has name, model, modified_at, size, digest and all details strings."""
    body = json.loads(models.tags(CARDS))
    ollama.ListResponse.model_validate(body)
    assert [m["name"] for m in body["models"]] == ["gpt:latest", "claude:latest", "llama:latest", "embedder:latest",
                                                   "smart:latest"]
    for entry in body["models"]:
        assert entry["model"] == entry["name"]
        assert STAMP.match(entry["modified_at"]) and isinstance(entry["size"], int)
        assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
        for key in ("parent_model", "format", "family", "parameter_size", "quantization_level"):
            assert isinstance(entry["details"][key], str)
    gpt, _, llama, embedder, smart = body["models"]
    assert gpt["modified_at"] == "2023-11-14T22:13:20.123456789Z"
    assert gpt["details"]["family"] == "gpt" and llama["details"]["parameter_size"] == "8.0B"
    assert llama["size"] == 4_920_753_328 and llama["digest"] == "ab" * 32
    assert embedder["capabilities"] == ["embedding"]
    assert smart["details"]["family"] == "litegate"


@pytest.mark.parametrize("card,caps,ctx_key,ctx", [
    (CARDS[0], ["completion", "tools", "vision"], "gpt.context_length", 128000),
    (CARDS[1], ["completion", "tools", "vision", "thinking"], "claude.context_length", 200000),
    (CARDS[2], ["completion", "tools"], "llama.context_length", 131072),
    (ModelCard("llama", "llama3.1:8b", context_length=16384, model_info={"general.architecture": "llama",
                                                                                  "llama.context_length": 131072}),
     ["completion", "tools"], "llama.context_length", 16384),
    (ModelCard("v", "x", capabilities=("completion", "vision")), ["completion", "vision"], "x.context_length",
     8192),
    (CARDS[3], ["embedding"], "text.context_length", 128000),
])
def test_show_always_has_capabilities_and_context_length(card, caps, ctx_key, ctx):
    """/api/show: capabilities and model_info with general.architecture and <arch>.context_length,
    the configured window winning over the model's maximum."""
    body = json.loads(models.show(card, card.name))
    ollama.ShowResponse.model_validate(body)
    assert body["capabilities"] == caps
    assert body["model_info"]["general.architecture"] == ctx_key.split(".")[0]
    assert body["model_info"][ctx_key] == ctx
    assert all(isinstance(body["details"][k], str) for k in ("format", "family", "parameter_size", "quantization_level"))


def test_show_echoes_requested_name_to_copilot():
    """Copilot shows general.basename as the model's name; real Ollama echoes the requested one to it."""
    body = json.loads(models.show(CARDS[0], "gpt:latest", "GitHubCopilotChat/0.30.0"))
    assert body["model_info"]["general.basename"] == "gpt:latest"
    assert json.loads(models.show(CARDS[0], "gpt:latest"))["model_info"]["general.basename"] == "gpt"


def test_ps_body():
    """/api/ps lists models in use with expires_at, size_vram and context_length; empty is valid."""
    body = json.loads(models.ps([Running(CARDS[2], "2023-11-14T22:18:20.5+01:00", size=5, size_vram=5,
                                         context_length=16384),
                                 Running(CARDS[0], "2023-11-14T22:18:20.000000000Z")]))
    ollama.ProcessResponse.model_validate(body)
    llama, gpt = body["models"]
    assert (llama["name"], llama["size_vram"], llama["context_length"]) == ("llama:latest", 5, 16384)
    assert gpt["expires_at"] == "2023-11-14T22:18:20.000000000Z" and gpt["context_length"] == 128000
    assert json.loads(models.ps([])) == {"models": []}


def test_timestamp_has_nine_fraction_digits():
    """OllamaKit's fixed date pattern wants a fraction and an offset: always nine digits and Z."""
    assert timestamp(0) == "1970-01-01T00:00:00.000000000Z"
    assert timestamp(1_000_000_001) == "1970-01-01T00:00:01.000000001Z"
