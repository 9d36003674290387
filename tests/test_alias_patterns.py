"""Alias patterns (router.aliases keys with * or ?): how Claude Code's model names reach local models,
and how `litegate route` / `check-config` show it."""

from __future__ import annotations

import json

import pytest

from litegate.config import from_dict
from litegate.service import commands

DOC = {"models": [{"name": n, "provider": "ollama", "model": n} for n in ("qwen3-coder", "small", "claude-local")],
       "router": {"aliases": {"claude-opus-4-1": "qwen3-coder", "*haiku*": "small", "claude-*": "qwen3-coder"}}}


@pytest.mark.parametrize("asked,expected", [
    ("claude-haiku-4-5-20251001", "small"),      # first pattern in the order written wins
    ("claude-sonnet-4-5-20250929", "qwen3-coder"),
    ("claude-opus-4-1", "qwen3-coder"),            # exact alias
    ("claude-local", "claude-local"),              # a real model is never shadowed by a pattern
    ("gpt-4o", "gpt-4o"),                          # no match: unchanged (the plan then says unknown)
])
def test_patterns_resolve_in_order_after_exact_names(asked, expected):
    """Exact aliases and real model names first, then the first matching pattern."""
    assert from_dict(DOC).resolve_name(asked) == expected


def test_route_and_check_config_show_patterns(tmp_path, capsys):
    """`litegate route --model claude-…` names the pattern it went through; check-config lists patterns."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps(DOC))
    assert commands.route(str(path), "hi", "claude-sonnet-4-5") == 0
    out = capsys.readouterr().out
    assert "claude-sonnet-4-5 -> qwen3-coder (alias pattern 'claude-*')" in out
    assert commands.check_config(str(path)) == 0
    out = capsys.readouterr().out
    assert "alias pattern *haiku* -> small" in out and "alias claude-opus-4-1 -> qwen3-coder" in out
