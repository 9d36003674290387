"""A Responses request (`CreateResponse`) -> the internal chat request (openai-responses.md §6).

What it owns: instructions and input items into chat messages (the merge rule that keeps every
tool result right after the call it answers, reasoning carried back from our own token, images
from tool outputs moved into a user message), Responses tools into chat functions (custom,
local_shell and namespaced tools emulated, web_search handed to litegate's own search, other
hosted tools dropped), tool_choice, text.format, reasoning.effort and the sampling settings.
It also collects what the answer must echo back (`Inbound.echo`). Every fault is a BadRequest
naming the field in the client's terms (`input[3].call_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from litegate.errors import BadRequest
from litegate.wire import (
    ChatRequest, ContentPart, FunctionCall, FunctionDef, ImageURL, JsonSchemaFormat, Message, NamedToolChoice,
    ResponseFormat, StreamOptions, Tool, ToolCall, ToolChoiceFunction,
)
from litegate.surfaces.responses.items import ToolKind, decode_reasoning
from litegate.surfaces.responses.output import echo_of
from litegate.surfaces.responses.types import CreateResponse, InputItem, Part

_EMPTY_OBJECT = {"type": "object", "properties": {}}
_CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string", "description": "The tool's input, as free text."}},
                 "required": ["input"]}
_SHELL = {"type": "object", "properties": {
    "command": {"type": "array", "items": {"type": "string"}, "description": "The command and its arguments."},
    "workdir": {"type": "string", "description": "Working directory."},
    "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds."}}, "required": ["command"]}
_WEB_SEARCH = frozenset({"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"})
# Backends know none..xhigh; the newest SDK's "max" is the top of that scale.
_EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
            "xhigh": "xhigh", "max": "xhigh"}
_TEXT_PARTS = ("input_text", "output_text", "text")


@dataclass(slots=True)
class Inbound:
    """A decoded Responses request: the chat form plus what the answer needs to be told."""

    chat: ChatRequest
    tools: dict[str, ToolKind]  # chat function name -> how the client declared it
    echo: dict[str, Any]  # request settings every Response object repeats
    encrypted_reasoning: bool  # include has reasoning.encrypted_content
    search_sources: bool  # include has web_search_call.action.sources
    web_search: bool  # a web_search tool was declared
    estimate: int  # input tokens guessed from characters, for backends that report none


def to_chat(body: CreateResponse, prior: Sequence[InputItem] = ()) -> Inbound:
    """Translate; `prior` is the stored history of previous_response_id (input and output items)."""
    if body.background:
        raise BadRequest("background: litegate answers in the foreground only; leave background unset",
                         param="background")
    if body.conversation is not None:
        raise BadRequest("conversation: conversation objects are not kept by litegate; use previous_response_id "
                         "or send the history in input", param="conversation")
    if isinstance(body.input, str) and not prior:  # the plain question: no history to rebuild
        messages = [Message("system", body.instructions)] if body.instructions else []
        messages.append(Message("user", body.input))
        chars = len(body.input) + len(body.instructions or "")
    else:
        messages, chars = _messages(body, prior)
    functions, kinds, web = _tools(body.tools or [])
    tool_choice, functions = _tool_choice(body.tool_choice, functions, kinds)
    include = set(body.include or ())
    chat = ChatRequest(
        model=body.model, messages=messages, stream=body.stream,
        stream_options=StreamOptions(include_usage=True) if body.stream else None,
        max_completion_tokens=body.max_output_tokens, temperature=body.temperature, top_p=body.top_p,
        user=body.user, safety_identifier=body.safety_identifier, tools=functions or None,
        tool_choice=tool_choice if functions else None,
        parallel_tool_calls=body.parallel_tool_calls if functions else None,
        response_format=_format(body), reasoning_effort=_effort(body),
        prompt_cache_key=body.prompt_cache_key, verbosity=body.text.verbosity if body.text else None,
        web_search_options={} if web else None)
    return Inbound(chat, kinds, echo_of(body), "reasoning.encrypted_content" in include,
                   "web_search_call.action.sources" in include, web, chars // 4)


def _messages(body: CreateResponse, prior: Sequence[InputItem]) -> tuple[list[Message], int]:
    items = list(prior)
    if isinstance(body.input, str):
        items.append(InputItem(type="message", role="user", content=body.input))
    elif body.input:
        items.extend(body.input)
    history = _History(len(prior))
    if body.instructions:
        history.append(Message("system", body.instructions), len(body.instructions))
    for i, item in enumerate(items):
        history.add(i, item)
    messages = history.done()
    if not any(m.role != "system" for m in messages):
        raise BadRequest("input: send a string or at least one input item", param="input")
    return messages, history.chars


# ---------------------------------------------------------------- input items -> messages
class _History:
    """Builds chat messages item by item (§6 merge rule; `where` names items as the client sent them)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset  # items before this index came from the store, not from `input`
        self.messages: list[Message] = []
        self.calls: set[str] = set()  # call ids of tool calls seen so far
        self.thinking: list[str] = []  # our reasoning tokens waiting for their assistant turn
        self.images: list[ContentPart] = []  # images from tool outputs, for a user message after them
        self.chars = 0

    def where(self, i: int) -> str:
        return f"input[{i - self.offset}]" if i >= self.offset else f"previous_response_id history item {i}"

    def append(self, m: Message, chars: int = 0) -> None:
        if self.images and m.role != "tool":
            self.messages.append(Message("user", self.images))
            self.images = []
        self.messages.append(m)
        self.chars += chars

    def done(self) -> list[Message]:
        if self.images:
            self.messages.append(Message("user", self.images))
        return self.messages  # reasoning with no assistant turn after it is dropped (it would prefill)

    def _assistant(self) -> Message:
        """The assistant turn to extend: the last message if it is one, else a new one."""
        last = self.messages[-1] if self.messages else None
        if last is None or last.role != "assistant":
            last = Message("assistant", None)
            self.append(last)
        if self.thinking:
            last.reasoning_content = (last.reasoning_content or "") + "".join(self.thinking)
            self.thinking = []
        return last

    def add(self, i: int, item: InputItem) -> None:
        kind = item.type
        if kind == "message":
            self._message(i, item)
        elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
            self._call(i, item)
        elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            self._output(i, item)
        elif kind == "reasoning":
            # Our token carries the whole thought; with none at all (the client did not ask for
            # encrypted_content) the text it was shown is the thought; a foreign token is dropped.
            text = decode_reasoning(item.encrypted_content) if item.encrypted_content else _shown(item)
            if text:
                self.thinking.append(text)
        elif kind == "item_reference":
            raise BadRequest(f"{self.where(i)}: item_reference needs stored items; send the item itself or use "
                             "previous_response_id", param=f"{self.where(i)}.id")
        # web_search_call, compaction and kinds newer than this face are history we cannot replay: dropped.

    def _message(self, i: int, item: InputItem) -> None:
        role = item.role
        where = self.where(i)
        if role not in ("user", "assistant", "system", "developer"):
            raise BadRequest(f"{where}.role must be user, assistant, system or developer", param=f"{where}.role")
        if role == "assistant":
            text = item.content if isinstance(item.content, str) else "".join(
                p.text or p.refusal or "" for p in item.content or ())
            if text:
                turn = self._assistant()
                turn.content = (turn.content or "") + text  # type: ignore[operator]
                self.chars += len(text)
            return
        content, chars = self._content(item.content, f"{where}.content")
        self.thinking = []
        self.append(Message(role, content), chars)

    def _content(self, content: str | list[Part] | None, where: str) -> tuple[str | list[ContentPart], int]:
        if content is None or isinstance(content, str):
            return content or "", len(content or "")
        parts: list[ContentPart] = []
        chars = 0
        for j, p in enumerate(content):
            if p.type in _TEXT_PARTS:
                parts.append(ContentPart("text", text=p.text or ""))
                chars += len(p.text or "")
            elif p.type == "input_image":
                parts.append(ContentPart("image_url", image_url=ImageURL(_image_url(p, f"{where}[{j}]"), p.detail)))
            elif p.type == "input_file":
                raise BadRequest(f"{where}[{j}]: input_file is not supported by litegate; send the text as input_text",
                                 param=f"{where}[{j}]")
            elif p.type == "refusal":
                parts.append(ContentPart("text", text=p.refusal or ""))
            else:
                raise BadRequest(f"{where}[{j}].type {p.type!r} is not a content part litegate knows "
                                 "(input_text, input_image)", param=f"{where}[{j}].type")
        if len(parts) == 1 and parts[0].type == "text":
            return parts[0].text or "", chars
        return parts, chars

    def _call(self, i: int, item: InputItem) -> None:
        where = self.where(i)
        if not item.call_id:
            raise BadRequest(f"{where}.call_id is required", param=f"{where}.call_id")
        if item.type == "function_call":
            if not item.name:
                raise BadRequest(f"{where}.name is required", param=f"{where}.name")
            name = f"{item.namespace}__{item.name}" if item.namespace else item.name
            arguments = item.arguments or "{}"
        elif item.type == "custom_tool_call":
            name, arguments = item.name or "", orjson.dumps({"input": item.input or ""}).decode()
        else:  # local_shell_call: back into the arguments of our emulated local_shell function
            action = item.action or {}
            args = {"command": action.get("command") or []}
            if action.get("working_directory"):
                args["workdir"] = action["working_directory"]
            if action.get("timeout_ms"):
                args["timeout_ms"] = action["timeout_ms"]
            name, arguments = "local_shell", orjson.dumps(args).decode()
        turn = self._assistant()
        turn.tool_calls = [*(turn.tool_calls or ()), ToolCall(FunctionCall(name, arguments), item.call_id)]
        self.calls.add(item.call_id)
        self.chars += len(arguments)

    def _output(self, i: int, item: InputItem) -> None:
        where = self.where(i)
        if not item.call_id:
            raise BadRequest(f"{where}.call_id is required", param=f"{where}.call_id")
        text, images = self._output_content(item.output, f"{where}.output")
        if item.call_id not in self.calls:
            # Its call was pruned from the history: a tool message without its call is refused by
            # every backend, so the result becomes a note from the user.
            self.append(Message("user", f"[output of tool call {item.call_id}]\n{text}"), len(text))
        else:
            self.messages.append(Message("tool", text, tool_call_id=item.call_id))
            self.chars += len(text)
        self.images.extend(images)

    def _output_content(self, output: str | list[Part] | None, where: str) -> tuple[str, list[ContentPart]]:
        if output is None or isinstance(output, str):
            return output or "", []
        texts, images = [], []
        for j, p in enumerate(output):
            if p.type in _TEXT_PARTS:
                texts.append(p.text or "")
            elif p.type == "input_image":
                images.append(ContentPart("image_url", image_url=ImageURL(_image_url(p, f"{where}[{j}]"), p.detail)))
            else:
                raise BadRequest(f"{where}[{j}].type {p.type!r}: a tool output holds input_text and input_image parts",
                                 param=f"{where}[{j}].type")
        return "\n".join(texts), images


def _shown(item: InputItem) -> str:
    """The reasoning text a reasoning item carries in the open: its raw content, else its summary."""
    raw = [p.text for p in item.content or () if isinstance(p, Part) and p.text] if isinstance(item.content, list) else []
    return "".join(raw) if raw else "".join(s.text for s in item.summary or ())


def _image_url(p: Part, where: str) -> str:
    url = p.image_url.get("url") if isinstance(p.image_url, dict) else p.image_url
    if isinstance(url, str) and url:
        return url
    if p.file_id:
        raise BadRequest(f"{where}.file_id: litegate keeps no files; send the image as image_url (a URL or data URI)",
                         param=f"{where}.file_id")
    raise BadRequest(f"{where}.image_url is required", param=f"{where}.image_url")


# ---------------------------------------------------------------- tools
def _tools(tools: list[dict[str, Any]]) -> tuple[list[Tool], dict[str, ToolKind], bool]:
    out: list[Tool] = []
    kinds: dict[str, ToolKind] = {}
    web = False
    for i, t in enumerate(tools):
        kind = t.get("type") if isinstance(t, dict) else None
        if not isinstance(kind, str):
            raise BadRequest(f"tools[{i}].type is required", param=f"tools[{i}].type")
        if kind in _WEB_SEARCH:
            web = True
        elif kind == "namespace":
            ns = _name(t, f"tools[{i}]")
            for j, member in enumerate(t.get("tools") or ()):
                tool = _function(member, f"tools[{i}].tools[{j}]", prefix=f"{ns}__")
                if tool is not None:
                    out.append(tool)
                    kinds[tool.function.name] = ToolKind(_kind(member), member["name"], ns)
        else:
            tool = _function(t, f"tools[{i}]")
            if tool is not None:
                out.append(tool)
                kinds[tool.function.name] = ToolKind(_kind(t), tool.function.name)
        # Hosted tools litegate cannot run (file_search, code_interpreter, image_generation, mcp,
        # tool_search, ...) are dropped: Codex declares some of them on every turn.
    return out, kinds, web


def _kind(t: dict[str, Any]) -> str:
    return t.get("type") if t.get("type") in ("custom", "local_shell") else "function"


def _name(t: dict[str, Any], where: str) -> str:
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name is required", param=f"{where}.name")
    return name


def _function(t: Any, where: str, prefix: str = "") -> Tool | None:
    kind = t.get("type") if isinstance(t, dict) else None
    if kind == "function":
        params = t.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"{where}.parameters must be a JSON Schema object", param=f"{where}.parameters")
        return Tool(FunctionDef(prefix + _name(t, where), t.get("description"), params or _EMPTY_OBJECT,
                                t.get("strict")))
    if kind == "custom":
        description = t.get("description") or ""
        fmt = t.get("format") or {}
        if fmt.get("type") == "grammar" and fmt.get("definition"):
            description += (f"\n\nPut the whole input in the `input` argument. It must match this "
                            f"{fmt.get('syntax', 'lark')} grammar:\n{fmt['definition']}")
        return Tool(FunctionDef(prefix + _name(t, where), description.strip() or None, _CUSTOM_INPUT))
    if kind == "local_shell":
        return Tool(FunctionDef("local_shell", "Run a command on the user's machine and get its output.", _SHELL))
    return None


def _tool_choice(choice: Any, functions: list[Tool], kinds: dict[str, ToolKind]) -> tuple[Any, list[Tool]]:
    if choice is None or isinstance(choice, str):
        if choice not in (None, "none", "auto", "required"):
            raise BadRequest("tool_choice must be none, auto, required or an object", param="tool_choice")
        return choice, functions
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if choice.get("namespace"):
            name = f"{choice['namespace']}__{name}"
        if name not in kinds:
            raise BadRequest(f"tool_choice.name: no {kind} tool named {choice.get('name')!r} in tools",
                             param="tool_choice.name")
        return NamedToolChoice(ToolChoiceFunction(name)), functions
    if kind == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or () if isinstance(t, dict)}
        allowed |= {f"{t['namespace']}__{t.get('name')}" for t in choice.get("tools") or ()
                    if isinstance(t, dict) and t.get("namespace")}
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise BadRequest("tool_choice.mode must be auto or required", param="tool_choice.mode")
        return mode, [f for f in functions if f.function.name in allowed]
    return "auto", functions  # a hosted tool: the model may use what it has


# ---------------------------------------------------------------- settings
def _format(body: CreateResponse) -> ResponseFormat | None:
    fmt = body.text.format if body.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat("json_object")
    if fmt.type == "json_schema":
        if not fmt.name or fmt.schema is None:
            raise BadRequest("text.format: json_schema needs name and schema", param="text.format")
        return ResponseFormat("json_schema", JsonSchemaFormat(fmt.name, fmt.schema, fmt.description, fmt.strict))
    raise BadRequest("text.format.type must be text, json_object or json_schema", param="text.format.type")


def _effort(body: CreateResponse) -> str | None:
    effort = body.reasoning.effort if body.reasoning else None
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise BadRequest(f"reasoning.effort must be one of {', '.join(_EFFORTS)}", param="reasoning.effort")
    return _EFFORTS[effort]
