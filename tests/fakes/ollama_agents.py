"""Tool-using behaviours for the fake Ollama: models that decide to search the web.

``steps(scenario, messages, tools)`` returns the fake's plan steps for these scenarios, or None:

=================  ==============================================================================
searcher           says "Let me search." and calls web_search {"query": <last user text>}; once a
                   tool result is in the history it answers "Answer: <first URL in the result>"
searcher-loop      calls web_search with the same query every time it has the tool; without the
                   tool it answers "Final answer from what I know."
searcher-mixed     in one turn calls web_search AND the client's get_weather; after the client's
                   result it answers "Weather and news: done"
fetcher            calls fetch_url {"url": <first URL in the last user text>}, then answers with the
                   page's first line that is not a marker
coder              a reasoning coding agent (Codex-style loop): thinks "I should list the files.", calls
                   shell {"command": ["ls"]}; once the result is in, thinks "The listing is in." and
                   answers "Files: <result>"; with no tool named shell it answers "No shell."
=================  ==============================================================================
"""

from __future__ import annotations

import re
from typing import Any

URL = re.compile(r"https?://[^\s\]\)\"'<>]+")


def _tool_names(tools: list[dict[str, Any]]) -> set[str]:
    return {t.get("function", {}).get("name") for t in tools}


def _last_user(messages: list[dict[str, Any]]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def _answered(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool messages after the last user message."""
    out = []
    for m in reversed(messages):
        if m.get("role") == "user":
            break
        if m.get("role") == "tool":
            out.append(m)
    return out[::-1]


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": args}}


def steps(scenario: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list | None:
    names, results = _tool_names(tools), _answered(messages)
    if scenario == "searcher":
        if results:
            url = next(iter(URL.findall(results[-1].get("content") or "")), "no-url")
            return [("content", "Answer: "), ("content", url)]
        if "web_search" in names:
            return [("content", "Let me search."), ("tools", [_call("web_search", {"query": _last_user(messages)})])]
        return [("content", "I cannot search.")]
    if scenario == "searcher-loop":
        if "web_search" in names:
            return [("tools", [_call("web_search", {"query": "same question"})])]
        return [("content", "Final answer from what I know.")]
    if scenario == "searcher-mixed":
        if any(r.get("tool_name") == "get_weather" for r in results):
            return [("content", "Weather and news: done")]
        return [("tools", [_call("web_search", {"query": "oslo news"}), _call("get_weather", {"city": "Oslo"})])]
    if scenario == "fetcher":
        if results:
            lines = [ln for ln in (results[-1].get("content") or "").splitlines()
                     if ln.strip() and "<<<" not in ln and ">>>" not in ln and "untrusted" not in ln.lower()]
            return [("content", "Page says: " + (lines[-1].strip() if lines else ""))]
        url = next(iter(URL.findall(_last_user(messages))), "")
        return [("tools", [_call("fetch_url", {"url": url})])]
    if scenario == "coder":
        if results:
            return [("thinking", "The listing is in."), ("content", "Files: "),
                    ("content", results[-1].get("content") or "")]
        if "shell" in names:
            return [("thinking", "I should list"), ("thinking", " the files."),
                    ("tools", [_call("shell", {"command": ["ls"]})])]
        return [("content", "No shell.")]
    return None
