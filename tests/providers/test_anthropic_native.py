"""Native pass-through to Anthropic deployments (providers/anthropic/native.py): what litegate
changes in a client's Messages body and in the reply, and what it must leave alone."""

from __future__ import annotations

import json

import orjson
import pytest

from litegate.config import Deployment
from litegate.errors import GatewayError
from litegate.providers.anthropic.native import NativeRelay, build_native, reply
from litegate.providers.base import NativeRequest

TARGET = Deployment(name="sonnet", provider="anthropic", model="claude-sonnet-4-5-20250929", id="anthropic/sonnet",
                    api_base="https://api.anthropic.test", api_key="sk-ant-secret",
                    options={"anthropic_beta": ["context-1m-2025-08-07"]})
SIG = "EqQBCkgIARABGAIiQL1a2m7vQ7t0lXx8"


def body(**over):
    return {"model": "claude-sonnet-4-5", "max_tokens": 64000, "stream": True,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.0.14;"},
                       {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            **over}


def test_body_survives_but_model_key_and_max_tokens():
    """cache_control, the attribution block, context_management survive byte for byte; the model is the
    deployment's, max_tokens is clamped, the key is the deployment's, betas are joined."""
    req = build_native(body(), TARGET, {"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
                                        "anthropic-version": "2023-06-01", "x-api-key": "client-key"},
                       max_tokens=32000)
    sent = orjson.loads(req.body)
    assert sent["model"] == "claude-sonnet-4-5-20250929" and sent["max_tokens"] == 32000
    assert sent["system"] == body()["system"] and sent["messages"] == body()["messages"]
    assert sent["context_management"] == body()["context_management"]
    assert req.url == "https://api.anthropic.test/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-secret"
    assert req.headers["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    assert b"client-key" not in req.body


def test_small_max_tokens_and_count_tokens_path():
    """A max_tokens under the limit is left alone; count_tokens goes to its own path."""
    req = build_native(body(max_tokens=100), TARGET, {}, max_tokens=32000, path="/v1/messages/count_tokens")
    assert orjson.loads(req.body)["max_tokens"] == 100
    assert req.url.endswith("/v1/messages/count_tokens") and req.headers["anthropic-version"] == "2023-06-01"


def test_litegate_signed_thinking_is_dropped_and_thinking_switched_off_when_it_no_longer_fits():
    """Thinking litegate signed (another backend's) cannot reach Anthropic; real signatures pass; when the
    last tool turn loses its opening thinking, thinking is turned off instead of earning a 400."""
    history = [{"role": "user", "content": "go"},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "a", "signature": SIG},
                                                 {"type": "text", "text": "x"}]},
               {"role": "user", "content": "more"},
               {"role": "assistant", "content": [{"type": "thinking", "thinking": "b", "signature": "lg1.bGl0ZWdhdGU"},
                                                 {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]
    sent = orjson.loads(build_native(body(messages=history, thinking={"type": "enabled", "budget_tokens": 2048}),
                                     TARGET, {}).body)
    assert sent["messages"][1]["content"][0]["signature"] == SIG
    assert [b["type"] for b in sent["messages"][3]["content"]] == ["tool_use"]
    assert "thinking" not in sent
    history[3]["content"][0]["signature"] = SIG
    kept = orjson.loads(build_native(body(messages=history, thinking={"type": "enabled", "budget_tokens": 2048}),
                                     TARGET, {}).body)
    assert kept["thinking"] == {"type": "enabled", "budget_tokens": 2048} and kept["messages"] == history


def test_relay_reframes_rewrites_model_and_counts_usage():
    """Each payload goes out with its event line; message_start names the client's model; usage is read
    from message_start and message_delta; an error event raises the mapped error."""
    relay = NativeRelay("claude-sonnet-4-5")
    start = relay.frame(b'{"type":"message_start","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929",'
                        b'"usage":{"input_tokens":12,"cache_read_input_tokens":100,"output_tokens":1}}}')
    assert start.startswith(b"event: message_start\ndata: ") and start.endswith(b"\n\n")
    assert json.loads(start.split(b"data: ", 1)[1])["message"]["model"] == "claude-sonnet-4-5"
    ping = relay.frame(b'{"type": "ping"}')
    assert ping == b'event: ping\ndata: {"type": "ping"}\n\n'
    relay.frame(b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":57}}')
    relay.frame(b'{"type":"message_stop"}')
    assert relay.saw_stop and relay.usage.prompt_tokens == 112 and relay.usage.completion_tokens == 57
    with pytest.raises(GatewayError) as info:
        relay.frame(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert info.value.retryable and "Overloaded" in info.value.message


def test_whole_reply_gets_the_clients_model_and_usage():
    """A non-streaming native reply keeps its content and names the client's model; usage is counted."""
    raw, usage = reply(b'{"type":"message","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"hi"}],'
                       b'"usage":{"input_tokens":3,"output_tokens":2,"cache_creation_input_tokens":4}}', TARGET,
                       NativeRequest("anthropic", b"", "claude-sonnet-4-5"))
    msg = json.loads(raw)
    assert msg["model"] == "claude-sonnet-4-5" and msg["content"] == [{"type": "text", "text": "hi"}]
    assert (usage.prompt_tokens, usage.completion_tokens) == (7, 2)
