"""Pure rule evaluation for virtual models (e.g. `auto`): request features -> chosen model.

Rules are data in the config (router.routes). Each rule's `when` conditions must all hold;
the first matching rule wins, else the route's default. A `label` condition needs the
classifier's answer, which the gateway obtains (I/O) and passes in; offline callers pass a
label of their choosing or None (then label rules do not match).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from litegate.config import Route, Rule, When
from litegate.providers.messages import text_of
from litegate.wire import ChatRequest

_CODE = re.compile(
    r"```|^\s*(def|class|import|from\s+\S+\s+import|function|const|let|var|public|private|fn|func|#include|"
    r"SELECT|INSERT|UPDATE)\b|[{};]\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Features:
    text: str = ""
    has_images: bool = False
    has_tools: bool = False
    has_code: bool = False
    tokens: int = 0
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    model: str
    rule: str  # "rule:<name or index>" or "default"
    why: tuple[str, ...]  # one line per rule looked at, for `litegate route` and debugging


def estimate_tokens(req: ChatRequest) -> int:
    """A cheap prompt-size estimate: ~4 characters a token, plus a little per message."""
    chars = sum(len(text_of(m.content)) for m in req.messages)
    chars += sum(len(c.function.arguments) + len(c.function.name) for m in req.messages for c in m.tool_calls or ())
    return chars // 4 + 4 * len(req.messages)


def features(req: ChatRequest, key: str | None = None, headers: Mapping[str, str] | None = None) -> Features:
    last_user = next((m for m in reversed(req.messages) if m.role == "user"), None)
    text = text_of(last_user.content) if last_user else ""
    images = any(isinstance(m.content, list) and any(p.type == "image_url" for p in m.content) for m in req.messages)
    return Features(text=text, has_images=images, has_tools=bool(req.tools), has_code=bool(_CODE.search(text)),
                    tokens=estimate_tokens(req), key=key,
                    headers={k.lower(): v for k, v in (headers or {}).items()})


def needs_label(route: Route) -> bool:
    return any(r.when.label is not None for r in route.rules)


def _check(when: When, f: Features, label: str | None) -> str | None:
    """None when every condition holds, else why not."""
    if when.keywords is not None:
        low = f.text.lower()
        # Whole words, but by lookaround rather than \b, so "c++" or "C#" (ending in a symbol) can match.
        if not any(re.search(rf"(?<!\w){re.escape(k.lower())}(?!\w)", low) for k in when.keywords):
            return "no keyword found"
    if when.regex is not None and not re.search(when.regex, f.text, re.IGNORECASE | re.MULTILINE):
        return "regex does not match"
    for attr in ("has_images", "has_tools", "has_code"):
        want = getattr(when, attr)
        if want is not None and getattr(f, attr) != want:
            return f"{attr} is {getattr(f, attr)}"
    if when.min_tokens is not None and f.tokens < when.min_tokens:
        return f"~{f.tokens} tokens < {when.min_tokens}"
    if when.max_tokens is not None and f.tokens > when.max_tokens:
        return f"~{f.tokens} tokens > {when.max_tokens}"
    if when.keys is not None and f.key not in when.keys:
        return f"key {f.key!r} not listed"
    for name, value in (when.header or {}).items():
        got = f.headers.get(name.lower())
        if got is None or (value != "*" and got.lower() != value.lower()):
            return f"header {name} is {got!r}"
    if when.label is not None and label != when.label:
        return f"label is {label!r}"
    return None


def rule_id(rule: Rule, index: int) -> str:
    return f"rule:{rule.name or index}"


def decide(route: Route, f: Features, label: str | None = None) -> Decision:
    why = []
    for i, rule in enumerate(route.rules):
        miss = _check(rule.when, f, label)
        if miss is None:
            why.append(f"{rule_id(rule, i)} -> {rule.model}: matched")
            return Decision(rule.model, rule_id(rule, i), tuple(why))
        why.append(f"{rule_id(rule, i)} -> {rule.model}: no ({miss})")
    why.append(f"default -> {route.default}")
    return Decision(route.default, "default", tuple(why))
