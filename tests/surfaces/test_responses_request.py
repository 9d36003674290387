"""litegate.surfaces.responses, requests in: a CreateResponse body -> the internal chat request
(openai-responses.md §2, §5, §6). Pure functions, table-driven; no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from litegate.errors import BadRequest
from litegate.surfaces.responses import (
    ToolKind, decode_request, encode_reasoning, input_items_decoder, is_codex, to_chat,
)
from litegate.wire import NamedToolChoice, encoder

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def inbound(**body: Any):
    return to_chat(decode_request(json.dumps({"model": "qwen3:8b", **body}).encode()))


def messages(**body: Any) -> list[dict[str, Any]]:
    """The chat messages as plain JSON (null fields dropped), for readable expectations."""
    out = json.loads(encoder.encode(inbound(**body).chat.messages))
    return [{k: v for k, v in m.items() if v is not None} for m in out]


def call(call_id: str, name: str = "get_weather", args: str = '{"city":"Oslo"}') -> dict[str, Any]:
    # `type` is written out although it is the struct's default: the wire shape requires it (issue 21)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


# ---------------------------------------------------------------- input -> messages
MESSAGE_CASES = [
    ("a string input is one user message",
     {"input": "Hi"}, [{"role": "user", "content": "Hi"}]),
    ("instructions come first as a system message",
     {"instructions": "Be terse.", "input": "Hi"},
     [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]),
    ("a bare {role, content} item is a message; developer stays developer",
     {"input": [{"role": "developer", "content": "Sandbox: read-only"}, {"role": "user", "content": "ls"}]},
     [{"role": "developer", "content": "Sandbox: read-only"}, {"role": "user", "content": "ls"}]),
    ("one input_text part becomes a plain string",
     {"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}]},
     [{"role": "user", "content": "Hello"}]),
    ("text and image parts stay parts; an image URL or data URI passes through",
     {"input": [{"role": "user", "content": [{"type": "input_text", "text": "What is it?"},
                                            {"type": "input_image", "image_url": PNG}]}]},
     [{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                   {"type": "image_url", "image_url": {"url": PNG}}]}]),
    ("assistant history joins its output_text parts",
     {"input": [{"role": "user", "content": "Hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hel"},
                                                                     {"type": "output_text", "text": "lo"}]}]},
     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]),
    ("function_call then its output: one assistant turn with the call, then the tool message",
     {"input": [{"role": "user", "content": "Weather?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "4 C"}]},
     [{"role": "user", "content": "Weather?"},
      {"role": "assistant", "tool_calls": [call("call_1")]},
      {"role": "tool", "content": "4 C", "tool_call_id": "call_1"}]),
    ("an assistant message between a call and its output merges into the same turn (the merge rule)",
     {"input": [{"role": "user", "content": "Weather?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
                {"role": "assistant", "content": "Checking."},
                {"type": "function_call_output", "call_id": "call_1", "output": "4 C"}]},
     [{"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": "Checking.", "tool_calls": [call("call_1")]},
      {"role": "tool", "content": "4 C", "tool_call_id": "call_1"}]),
    ("parallel calls share one assistant turn; empty arguments become {}",
     {"input": [{"role": "user", "content": "Both"},
                {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
                {"type": "function_call", "call_id": "b", "name": "get_time", "arguments": ""},
                {"type": "function_call_output", "call_id": "a", "output": "4 C"},
                {"type": "function_call_output", "call_id": "b", "output": "noon"}]},
     [{"role": "user", "content": "Both"},
      {"role": "assistant", "tool_calls": [call("a"), call("b", "get_time", "{}")]},
      {"role": "tool", "content": "4 C", "tool_call_id": "a"},
      {"role": "tool", "content": "noon", "tool_call_id": "b"}]),
    ("an output whose call was pruned becomes a user note, never an orphan tool message",
     {"input": [{"role": "user", "content": "Go on"},
                {"type": "function_call_output", "call_id": "gone", "output": "42"}]},
     [{"role": "user", "content": "Go on"}, {"role": "user", "content": "[output of tool call gone]\n42"}]),
    ("images in a tool output move to a user message after all the tool messages",
     {"input": [{"role": "user", "content": "Look"},
                {"type": "function_call", "call_id": "a", "name": "view_image", "arguments": "{}"},
                {"type": "function_call", "call_id": "b", "name": "view_image", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "a",
                 "output": [{"type": "input_text", "text": "shot"}, {"type": "input_image", "image_url": PNG}]},
                {"type": "function_call_output", "call_id": "b", "output": "none"}]},
     [{"role": "user", "content": "Look"},
      {"role": "assistant", "tool_calls": [call("a", "view_image", "{}"), call("b", "view_image", "{}")]},
      {"role": "tool", "content": "shot", "tool_call_id": "a"},
      {"role": "tool", "content": "none", "tool_call_id": "b"},
      {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]),
    ("our reasoning token goes back as the next assistant turn's reasoning (Codex: no id, content null)",
     {"input": [{"role": "user", "content": "2+2?"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "add"}], "content": None,
                 "encrypted_content": encode_reasoning("Two plus two is four.")},
                {"type": "function_call", "call_id": "c", "name": "calc", "arguments": '{"e":"2+2"}'},
                {"type": "function_call_output", "call_id": "c", "output": "4"}]},
     [{"role": "user", "content": "2+2?"},
      {"role": "assistant", "tool_calls": [call("c", "calc", '{"e":"2+2"}')],
       "reasoning_content": "Two plus two is four."},
      {"role": "tool", "content": "4", "tool_call_id": "c"}]),
    ("without encrypted_content the summary the client was shown goes back (Codex when reasoning is null)",
     {"input": [{"role": "user", "content": "Hi"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Greet back."}]},
                {"role": "assistant", "content": "Hello"}]},
     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "reasoning_content": "Greet back."}]),
    ("a foreign token is dropped, summary and all; so is reasoning with no assistant turn after it",
     {"input": [{"role": "user", "content": "Hi"},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}],
                 "encrypted_content": "gAAAAABopaque"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Again"},
                {"type": "reasoning", "summary": [], "encrypted_content": None},
                {"type": "reasoning", "summary": [], "encrypted_content": encode_reasoning("unused")}]},
     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}]),
    ("custom and local_shell calls replay as calls of the functions that emulate them",
     {"input": [{"role": "user", "content": "Patch it"},
                {"type": "custom_tool_call", "call_id": "p", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "p", "output": "Done"},
                {"type": "local_shell_call", "call_id": "s", "status": "completed",
                 "action": {"type": "exec", "command": ["ls", "-la"], "env": {}, "working_directory": "/tmp"}},
                {"type": "function_call_output", "call_id": "s", "output": "a.txt"}]},
     [{"role": "user", "content": "Patch it"},
      {"role": "assistant", "tool_calls": [call("p", "apply_patch", '{"input":"*** Begin Patch"}')]},
      {"role": "tool", "content": "Done", "tool_call_id": "p"},
      {"role": "assistant", "tool_calls": [call("s", "local_shell", '{"command":["ls","-la"],"workdir":"/tmp"}')]},
      {"role": "tool", "content": "a.txt", "tool_call_id": "s"}]),
    ("web_search_call and compaction history items are dropped",
     {"input": [{"role": "user", "content": "News?"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "news"}},
                {"type": "compaction", "encrypted_content": "opaque"},
                {"role": "assistant", "content": "None today."}]},
     [{"role": "user", "content": "News?"}, {"role": "assistant", "content": "None today."}]),
    ("a namespaced call replays under its flattened name",
     {"input": [{"role": "user", "content": "Go"},
                {"type": "function_call", "call_id": "n", "namespace": "github", "name": "search", "arguments": "{}"}]},
     [{"role": "user", "content": "Go"}, {"role": "assistant", "tool_calls": [call("n", "github__search", "{}")]}]),
]


@pytest.mark.parametrize("body,expected", [c[1:] for c in MESSAGE_CASES], ids=[c[0] for c in MESSAGE_CASES])
def test_input_items_become_chat_messages(body, expected):
    """Each input shape maps to the chat history the providers already know (openai-responses.md §6)."""
    assert messages(**body) == expected


def test_prior_items_come_before_new_input_and_instructions_are_not_carried_over():
    """previous_response_id history (stored items) precedes the new input; only this turn's instructions apply."""
    prior = input_items_decoder.decode(json.dumps([
        {"role": "user", "content": "Hi"},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}]))
    body = decode_request(json.dumps({"model": "m", "instructions": "New rules", "input": "And now?"}).encode())
    got = to_chat(body, prior)
    assert [(m.role, m.content) for m in got.chat.messages] == [
        ("system", "New rules"), ("user", "Hi"), ("assistant", "Hello"), ("user", "And now?")]


# ---------------------------------------------------------------- tools and settings
def test_tools_map_to_chat_functions_and_remember_their_kind():
    """function/custom/local_shell/namespace become chat functions; web_search turns on litegate's search;
    hosted tools litegate cannot run are dropped rather than failing Codex's every turn."""
    got = inbound(input="x", tools=[
        {"type": "function", "name": "shell", "description": "Run", "strict": False,
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "function", "name": "noop"},
        {"type": "custom", "name": "apply_patch", "description": "Patch files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "local_shell"},
        {"type": "namespace", "name": "github", "description": "GitHub",
         "tools": [{"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}]},
        {"type": "web_search", "external_web_access": False},
        {"type": "image_generation"}, {"type": "tool_search"}, {"type": "file_search", "vector_store_ids": ["v"]}])
    fns = {t.function.name: t.function for t in got.chat.tools}
    assert list(fns) == ["shell", "noop", "apply_patch", "local_shell", "github__search"]
    assert fns["noop"].parameters == {"type": "object", "properties": {}}
    assert fns["apply_patch"].parameters["required"] == ["input"]
    assert "start: /.+/" in fns["apply_patch"].description
    assert fns["local_shell"].parameters["required"] == ["command"]
    assert got.tools["apply_patch"] == ToolKind("custom", "apply_patch")
    assert got.tools["github__search"] == ToolKind("function", "search", "github")
    assert got.web_search and got.chat.web_search_options == {}
    assert [t["type"] for t in got.echo["tools"]][:2] == ["function", "function"]
    assert got.echo["tools"][1]["strict"] is None and got.echo["tools"][1]["parameters"] is None


TOOL_CHOICE_CASES = [
    ("strings pass", "required", "required", ["a", "b"]),
    ("a named function", {"type": "function", "name": "b"}, NamedToolChoice.__name__, ["a", "b"]),
    ("allowed_tools keeps only those tools", {"type": "allowed_tools", "mode": "required",
                                              "tools": [{"type": "function", "name": "a"}]}, "required", ["a"]),
    ("a hosted tool type means auto", {"type": "web_search"}, "auto", ["a", "b"]),
]


@pytest.mark.parametrize("choice,expected,names", [c[1:] for c in TOOL_CHOICE_CASES], ids=[c[0] for c in TOOL_CHOICE_CASES])
def test_tool_choice(choice, expected, names):
    """tool_choice maps to chat's (openai-responses.md §6)."""
    got = inbound(input="x", tool_choice=choice, tools=[{"type": "function", "name": "a"}, {"type": "function", "name": "b"}])
    tc = got.chat.tool_choice
    assert (type(tc).__name__ if not isinstance(tc, str) else tc) == expected
    assert [t.function.name for t in got.chat.tools] == names


def test_settings_map_to_chat_fields():
    """max_output_tokens, sampling, reasoning.effort, text.format, verbosity, prompt_cache_key, user."""
    got = inbound(input="x", max_output_tokens=300, temperature=0.2, top_p=0.9, parallel_tool_calls=False,
                  reasoning={"effort": "max", "summary": "auto"}, prompt_cache_key="thread-1", user="u1",
                  safety_identifier="s1", tools=[{"type": "function", "name": "a"}],
                  text={"verbosity": "low", "format": {"type": "json_schema", "name": "answer", "strict": True,
                                                        "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}})
    chat = got.chat
    assert (chat.max_completion_tokens, chat.temperature, chat.top_p, chat.parallel_tool_calls) == (300, 0.2, 0.9, False)
    assert chat.reasoning_effort == "xhigh"
    assert (chat.prompt_cache_key, chat.user, chat.safety_identifier, chat.verbosity) == ("thread-1", "u1", "s1", "low")
    assert chat.response_format.type == "json_schema"
    assert chat.response_format.json_schema.name == "answer" and chat.response_format.json_schema.strict is True
    assert got.echo["text"]["format"]["name"] == "answer" and got.echo["reasoning"] == {"effort": "max", "summary": "auto"}
    assert inbound(input="x", text={"format": {"type": "json_object"}}).chat.response_format.type == "json_object"
    assert inbound(input="x", text={"format": {"type": "text"}}).chat.response_format is None


def test_streaming_asks_the_backend_for_usage():
    """A streamed answer needs usage for response.completed, so the chat request asks for it."""
    assert inbound(input="x", stream=True).chat.include_usage
    assert not inbound(input="x").chat.include_usage


CODEX_BODY = {
    "model": "gpt-5-codex", "instructions": "You are Codex, a coding agent." * 50,
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "**Listing**"}], "content": None,
         "encrypted_content": encode_reasoning("I should run ls.")},
        {"type": "function_call", "name": "shell", "arguments": '{"command":["ls"]}', "call_id": "call_a"},
        {"type": "function_call_output", "call_id": "call_a", "output": "README.md\n"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "One file."}]}],
    "tools": [{"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
               "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                              "required": ["command"], "additionalProperties": False}},
              {"type": "custom", "name": "apply_patch", "description": "Edit files",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}},
              {"type": "web_search", "external_web_access": True}],
    "tool_choice": "auto", "parallel_tool_calls": False, "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False, "stream": True, "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a1b2-c3d4-7e8f-9a0b-c1d2e3f4a5b6", "text": {"verbosity": "low"},
    "client_metadata": {"x-codex-installation-id": "abc"}, "service_tier": "auto",
}


def test_what_codex_sends_is_accepted():
    """A whole Codex turn (its body shape from codex-rs common.rs) translates without error (§5)."""
    got = inbound(**{k: v for k, v in CODEX_BODY.items() if k != "model"})
    roles = [m.role for m in got.chat.messages]
    assert roles == ["system", "developer", "user", "user", "assistant", "tool", "assistant"]
    assert got.chat.messages[4].reasoning_content == "I should run ls."
    assert got.encrypted_reasoning and got.web_search and got.echo["store"] is False
    assert got.estimate > 300  # ~chars/4 of a 1,500-character prompt


# ---------------------------------------------------------------- faults
ERROR_CASES = [
    ("model is required", {"input": "x"}, "model"),
    ("input must be a string or items", {"model": "m", "input": 5}, "input"),
    ("no input at all", {"model": "m", "instructions": "Hi"}, "input"),
    ("background mode", {"model": "m", "input": "x", "background": True}, "background"),
    ("conversation objects", {"model": "m", "input": "x", "conversation": "conv_1"}, "conversation"),
    ("a message role", {"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ("a function_call without call_id", {"model": "m", "input": [{"type": "function_call", "name": "f"}]},
     "input[0].call_id"),
    ("a function_call_output without call_id", {"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
     "input[0].call_id"),
    ("an image by file id", {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id"),
    ("a file input", {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]},
     "input[0].content[0]"),
    ("an item reference", {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].id"),
    ("a tool without type", {"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0].type"),
    ("a function tool without name", {"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ("tool_choice naming no tool", {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}],
                                    "tool_choice": {"type": "function", "name": "g"}}, "tool_choice.name"),
    ("tool_choice string", {"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
    ("reasoning effort", {"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ("json_schema without schema", {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}},
     "text.format"),
    ("temperature type", {"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
]


@pytest.mark.parametrize("body,param", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_bad_requests_name_the_field(body, param):
    """Bad input is a 400 invalid_request_error whose param names the field as the client sent it."""
    with pytest.raises(BadRequest) as e:
        to_chat(decode_request(json.dumps(body).encode()))
    assert e.value.status == 400 and e.value.type == "invalid_request_error"
    assert e.value.param == param, e.value.message


def test_an_empty_body_is_a_clear_400():
    """No body at all is named as such, not a decode traceback."""
    with pytest.raises(BadRequest, match="empty"):
        decode_request(b"")


CLIENT_CASES = [
    ("Codex CLI", {"originator": "codex_cli_rs", "user-agent": "codex_cli_rs/0.50.0 (Mac OS 15.1; arm64) iTerm"}, True),
    ("codex exec", {"originator": "codex_exec"}, True),
    ("the Agents SDK", {"user-agent": "Agents/Python 0.24.0"}, False),
    ("openai-python", {"user-agent": "OpenAI/Python 3.57.0"}, False),
]


@pytest.mark.parametrize("headers,codex", [c[1:] for c in CLIENT_CASES], ids=[c[0] for c in CLIENT_CASES])
def test_codex_is_recognised_by_its_headers(headers, codex):
    """Codex gets its length cuts as response.completed; it is told apart by originator / User-Agent."""
    assert is_codex(headers) is codex
