"""Outbound fidelity: the exact JSON each provider sends for one request with a tool round trip.

The request is built in code (as the tool loop and other faces build theirs), so a field the wire
shape requires but the struct has as a default (`"type": "function"`, a call's `arguments`) must still
be written out. Each expected body follows the provider's documented request shape
(/work/shared/protocols/: ollama.md §1, openai-chat.md §2-3, anthropic-messages.md, gemini.md).
"""

from __future__ import annotations

import json

import pytest

from litegate.config import from_dict
from litegate.providers import PROVIDERS
from litegate.wire import (
    ChatRequest, FunctionCall, FunctionDef, Message, NamedToolChoice, Tool, ToolCall, ToolChoiceFunction,
)

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
REQUEST = ChatRequest(
    model="x",
    messages=[
        Message("system", "Be terse."),
        Message("user", "Weather in Oslo?"),
        Message("assistant", None, tool_calls=[ToolCall(FunctionCall("get_weather", '{"city":"Oslo"}'), "call_1")]),
        Message("tool", '{"temp_c":4}', tool_call_id="call_1"),
    ],
    tools=[Tool(FunctionDef("get_weather", "Current weather", WEATHER_SCHEMA))],
    tool_choice=NamedToolChoice(ToolChoiceFunction("get_weather")),
    max_completion_tokens=64, temperature=0.2,
)
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                         "parameters": WEATHER_SCHEMA}}
EXPECTED = {
    "ollama": ("http://h/api/chat", {
        "model": "m-ollama", "stream": False,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
            {"role": "tool", "content": '{"temp_c":4}', "tool_name": "get_weather", "tool_call_id": "call_1"}],
        "tools": [TOOL],
        "options": {"num_predict": 64, "temperature": 0.2}}),
    "openai": ("http://h/chat/completions", {
        "model": "m-openai",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "content": '{"temp_c":4}', "tool_call_id": "call_1"}],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_completion_tokens": 64, "temperature": 0.2}),
    "anthropic": ("http://h/v1/messages", {
        "model": "m-anthropic", "max_tokens": 64, "system": "Be terse.", "temperature": 0.2,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c":4}'}]}],
        "tools": [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "tool", "name": "get_weather"}}),
    "gemini": ("http://h/models/m-gemini:generateContent", {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Oslo?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                                         "thoughtSignature": "skip_thought_signature_validator"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                             "response": {"result": {"temp_c": 4}}}}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Current weather",
                                             "parameters": WEATHER_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2}}),
}


def test_every_provider_has_an_outbound_contract():
    """A provider added to PROVIDERS without an expected body here fails (no silent gap)."""
    assert set(EXPECTED) == set(PROVIDERS)


@pytest.mark.parametrize("provider", sorted(EXPECTED))
def test_exact_json_sent(provider):
    """build_chat writes exactly the documented body: every required field, nothing the backend refuses."""
    cfg = from_dict({"models": [{"name": provider, "provider": provider, "model": f"m-{provider}",
                                 "api_base": "http://h", "api_key_env": "K"}]}, env={"K": "k"})
    ureq = PROVIDERS[provider].build_chat(REQUEST, cfg.models[0], {})
    url, body = EXPECTED[provider]
    assert ureq.url == url
    assert json.loads(ureq.body) == body
