"""core/rules.py: request features, and a virtual model's rules deciding on them (every
condition kind, first match wins, the default)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from litegate.config import Route, from_dict
from litegate.core.rules import Features, decide, estimate_tokens, features, needs_label
from litegate.wire import ChatRequest, chat_request_decoder


def request(*messages: dict[str, Any], **extra: Any) -> ChatRequest:
    return chat_request_decoder.decode(msgspec.json.encode({"model": "auto", "messages": list(messages), **extra}))


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def route(*rules: dict[str, Any], default: str = "general", classifier: bool = False) -> Route:
    """A virtual model `auto` built through the real config loader (so every rule must be able to match)."""
    names = {"general", "coder", "vision", "big", "small", "tools", "vip", "web"}
    auto: dict[str, Any] = {"rules": list(rules), "default": default}
    if classifier:
        auto["classifier"] = {"model": "small", "labels": ["code", "chat"], "default": "chat"}
    doc = {"models": [{"name": n, "provider": "ollama", "model": n} for n in sorted(names)],
           "auth": {"keys": [{"name": "alice", "key_env": "K"}, {"name": "bob", "key_env": "K"}]},
           "router": {"routes": {"auto": auto}}}
    return from_dict(doc, env={"K": "sk-test"}).router.routes["auto"]


# ---------------------------------------------------------------- features
def test_features_text_is_the_last_user_message():
    """features: the text rules look at is the last user message's (parts joined), not the system or assistant's."""
    req = request({"role": "system", "content": "system words"}, user("first question"),
                  {"role": "assistant", "content": "an answer"},
                  user([{"type": "text", "text": "second"}, IMAGE, {"type": "text", "text": "question"}]))
    assert features(req).text == "second\nquestion"


@pytest.mark.parametrize("messages, extra, attr, expected", [
    ([user("hi")], {}, "has_images", False),
    ([user([{"type": "text", "text": "what is this"}, IMAGE])], {}, "has_images", True),
    ([user([IMAGE]), {"role": "assistant", "content": "a cat"}, user("and now?")], {}, "has_images", True),
    ([user("hi")], {}, "has_tools", False),
    ([user("hi")], {"tools": [TOOL]}, "has_tools", True),
    ([user("hi")], {"tools": []}, "has_tools", False),
    ([user("tell me a story")], {}, "has_code", False),
    ([user("fix this:\n```\nx = 1\n```")], {}, "has_code", True),
    ([user("why does\ndef f(x):\n  return x\nfail")], {}, "has_code", True),
    ([user("int main() {\n  return 0;\n}")], {}, "has_code", True),
    ([user("SELECT * FROM t")], {}, "has_code", True),
    ([user("I'd like to select a nice class of wine")], {}, "has_code", False),
], ids=["no-image", "image", "image-earlier", "no-tools", "tools", "empty-tools", "prose", "fenced", "def",
        "braces", "sql", "prose-with-keywords-mid-line"])
def test_features_flags(messages, extra, attr, expected):
    """features: has_images (any message), has_tools (a non-empty tools list), has_code (fences, code lines)."""
    assert getattr(features(request(*messages, **extra)), attr) is expected


def test_token_estimate_counts_text_tool_calls_and_messages():
    """estimate_tokens: ~4 characters a token over every message's text and tool-call name + arguments, +4 a message."""
    req = request({"role": "system", "content": "x" * 40}, user("y" * 80),
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "c1", "type": "function", "function": {"name": "abcd", "arguments": "z" * 36}}]})
    assert estimate_tokens(req) == (40 + 80 + 4 + 36) // 4 + 3 * 4
    assert features(req).tokens == estimate_tokens(req)


def test_features_key_and_headers_lowercased():
    """features: carries the key name, and header names lowercased so rules match them in any case."""
    f = features(request(user("hi")), key="alice", headers={"X-Team": "Research"})
    assert f.key == "alice" and f.headers == {"x-team": "Research"}


# ---------------------------------------------------------------- decide: one condition kind at a time
CODE = Features(text="please fix:\n```py\nx=1\n```", has_code=True, tokens=30)
PROSE = Features(text="Write a poem about the Sea.", tokens=12)


@pytest.mark.parametrize("when, f, matches", [
    ({"keywords": ["poem", "story"]}, PROSE, True),
    ({"keywords": ["SEA"]}, PROSE, True),                        # case-insensitive
    ({"keywords": ["po"]}, PROSE, False),                        # whole words only
    ({"keywords": ["c++"]}, Features(text="help with c++ please"), True),  # a keyword ending in a symbol
    ({"keywords": ["c#"]}, Features(text="port it to C#"), True),
    ({"keywords": [".net"]}, Features(text="a .net app"), True),
    ({"keywords": ["c++"]}, Features(text="abc++ is no language"), False),
    ({"keywords": ["a.b"]}, Features(text="axb"), False),               # escaped, not a regex
    ({"regex": r"^write\b"}, PROSE, True),                       # IGNORECASE
    ({"regex": r"\bpoems?\b.*\bocean\b"}, PROSE, False),
    ({"has_images": True}, Features(has_images=True), True),
    ({"has_images": True}, PROSE, False),
    ({"has_images": False}, PROSE, True),
    ({"has_tools": True}, Features(has_tools=True), True),
    ({"has_tools": True}, PROSE, False),
    ({"has_code": True}, CODE, True),
    ({"has_code": True}, PROSE, False),
    ({"has_code": False}, CODE, False),
    ({"min_tokens": 30}, CODE, True),                            # bounds are inclusive
    ({"min_tokens": 31}, CODE, False),
    ({"max_tokens": 30}, CODE, True),
    ({"max_tokens": 29}, CODE, False),
    ({"min_tokens": 10, "max_tokens": 20}, PROSE, True),
    ({"keys": ["alice"]}, Features(key="alice"), True),
    ({"keys": ["alice"]}, Features(key="bob"), False),
    ({"keys": ["alice"]}, Features(key=None), False),
    ({"header": {"X-Team": "research"}}, Features(headers={"x-team": "Research"}), True),
    ({"header": {"x-team": "research"}}, Features(headers={"x-team": "sales"}), False),
    ({"header": {"x-team": "*"}}, Features(headers={"x-team": "anything"}), True),
    ({"header": {"x-team": "*"}}, Features(headers={}), False),
    ({"keywords": ["poem"], "has_code": True}, PROSE, False),     # every condition must hold
    ({"always": True}, PROSE, True),
], ids=lambda v: ",".join(v) if isinstance(v, dict) else ("match" if v else "miss") if isinstance(v, bool) else "")
def test_each_condition_kind(when, f, matches):
    """decide: each `when` condition kind matches exactly when it should; all conditions of a rule must hold."""
    d = decide(route({"model": "coder", "when": when}), f)
    assert (d.model, d.rule) == (("coder", "rule:0") if matches else ("general", "default"))


@pytest.mark.parametrize("label, expected", [("code", "coder"), ("chat", "general"), (None, "general")])
def test_label_condition_uses_the_given_label(label, expected):
    """decide: a label rule matches only the classifier's answer passed in; no label (None) never matches."""
    r = route({"model": "coder", "when": {"label": "code"}}, classifier=True)
    assert needs_label(r)
    assert decide(r, PROSE, label).model == expected


def test_needs_label_only_with_label_rules():
    """needs_label: false when no rule has a label condition, so the classifier is not asked."""
    assert not needs_label(route({"model": "coder", "when": {"has_code": True}}, classifier=True))


# ---------------------------------------------------------------- decide: order and explanation
def test_first_matching_rule_wins():
    """decide: rules are looked at in order and the first that matches wins, even when a later one also matches."""
    r = route({"model": "vision", "when": {"has_images": True}},
              {"name": "code", "model": "coder", "when": {"has_code": True}},
              {"model": "big", "when": {"min_tokens": 1}})
    d = decide(r, CODE)
    assert (d.model, d.rule) == ("coder", "rule:code")
    assert d.why == ("rule:0 -> vision: no (has_images is False)", "rule:code -> coder: matched")


def test_default_when_nothing_matches_explains_each_rule():
    """decide: no rule matches -> the route's default, with one line of why for every rule looked at."""
    r = route({"model": "vision", "when": {"has_images": True}}, {"model": "big", "when": {"min_tokens": 1000}},
              default="small")
    d = decide(r, PROSE)
    assert (d.model, d.rule) == ("small", "default")
    assert d.why == ("rule:0 -> vision: no (has_images is False)", "rule:1 -> big: no (~12 tokens < 1000)",
                     "default -> small")


def test_rules_on_a_real_request():
    """features + decide end to end: an image request goes to vision, a tools request to tools, the rest default."""
    r = route({"model": "vision", "when": {"has_images": True}}, {"model": "tools", "when": {"has_tools": True}})
    assert decide(r, features(request(user([IMAGE])))).model == "vision"
    assert decide(r, features(request(user("hi"), tools=[TOOL]))).model == "tools"
    assert decide(r, features(request(user("hi")))).model == "general"
