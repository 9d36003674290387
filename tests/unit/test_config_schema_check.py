"""config/schema_check.py answers exactly as jsonschema does, so serve (which imports jsonschema only
for a config at fault) accepts and rejects the same configs as before, with jsonschema's messages.

tests/conftest.py also compares the two on every config the rest of the suite loads in-process."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from litegate.config import ConfigError, from_dict, schema, schema_check
from litegate.config.schema_check import valid  # the function itself (conftest wraps the module's)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted((ROOT / "config").glob("*.json"))
# Values that sit on the edges jsonschema draws: bool vs int, 1.0 as an integer, NaN/inf, empty
# containers, lists with equal items (uniqueItems tells True from 1), strings that break patterns.
ODD = [None, True, False, 0, 1, 1.0, 1.5, -1, 10**12, math.nan, math.inf, "", "x", " leading", "a b",
       "sk-0123456789abcdef0123456789abcdef", "http://h:1/v1", "redis://h", [], [1, True], ["a", "a"], ["a"],
       {}, {"zz": 1}]


def _jsonschema_valid(doc: Any, rules: dict) -> bool:
    return not any(True for _ in jsonschema.Draft202012Validator(rules).iter_errors(doc))


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, at + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, at + (i,))
    return out


def _with(doc: Any, at: tuple, value: Any, *, delete: bool = False) -> Any:
    doc = copy.deepcopy(doc)
    if not at:
        return value
    parent = doc
    for k in at[:-1]:
        parent = parent[k]
    if delete:
        del parent[at[-1]]
    else:
        parent[at[-1]] = value
    return doc


def _mutants(seed: dict) -> list[Any]:
    """Every value of the seed replaced by each odd value, every key deleted, an unknown key in every object."""
    out = []
    for at in _paths(seed):
        node = seed
        for k in at:
            node = node[k]
        out += [_with(seed, at, v) for v in ODD]
        if at:
            out.append(_with(seed, at, None, delete=True))
        if isinstance(node, dict):
            out.append(_with(seed, at, {**node, "zz_unknown": 1}))
        if isinstance(node, list) and node:
            out.append(_with(seed, at, node + node[:1]))  # a repeated item
    return out


def test_seeds_exist_and_are_valid():
    """The corpus is not empty: the shipped configs exist and both engines accept them."""
    rules = schema()
    assert len(SEEDS) >= 3
    for path in SEEDS:
        doc = json.loads(path.read_text())
        assert valid(doc, rules) and _jsonschema_valid(doc, rules), path


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_agrees_with_jsonschema_on_every_mutant(seed):
    """For each shipped config and thousands of one-edit variants of it (odd values everywhere,
    keys dropped, unknown keys added, items repeated), schema_check accepts exactly what jsonschema accepts."""
    rules = schema()
    validator = jsonschema.Draft202012Validator(rules)
    doc = json.loads(seed.read_text())
    mutants = _mutants(doc)
    assert len(mutants) > 100
    disagree = []
    for m in mutants:
        want = not any(True for _ in validator.iter_errors(m))
        if valid(m, rules) != want:
            disagree.append((want, json.dumps(m, default=str)[:300]))
    rejected = sum(1 for m in mutants if not valid(m, rules))
    assert rejected > len(mutants) // 3  # the mutants do probe the schema
    assert not disagree, disagree[:3]


MINI_SCHEMAS = [
    {"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": ["string", "number"]}, {"type": "null"},
    {"enum": [1, "a", None]}, {"enum": [True]}, {"enum": [[1], {"a": 1}]}, {"const": 1}, {"const": False},
    {"uniqueItems": True}, {"minItems": 1}, {"items": {"type": "string"}}, {"minLength": 1, "maxLength": 1},
    {"pattern": "^[a-z]+$"}, {"minimum": 0, "maximum": 10}, {"exclusiveMinimum": 0}, {"minProperties": 1},
    {"required": ["zz"]}, {"properties": {"zz": {"type": "string"}}, "additionalProperties": False},
    {"additionalProperties": {"type": "integer"}}, {"not": {"type": "string"}}, {"allOf": [{"minimum": 1}, {}]},
    {"if": {"type": "string"}, "then": {"minLength": 2}}, {"if": {"type": "string"}, "else": {"type": "null"}},
    {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"}, True, False,
]


@pytest.mark.parametrize("rules", MINI_SCHEMAS, ids=lambda r: json.dumps(r)[:40])
def test_each_keyword_agrees_with_jsonschema_on_odd_values(rules):
    """Keyword by keyword, on values at jsonschema's edges (True is not 1, 1.0 is an integer, NaN passes
    bounds, [1, True] has unique items), schema_check gives jsonschema's answer."""
    for value in ODD:
        want = not any(True for _ in jsonschema.Draft202012Validator(rules).iter_errors(value))
        assert valid(value, rules) == want, value


def test_keywords_in_the_schema_are_all_understood():
    """Every keyword config.schema.json uses is one schema_check evaluates (or an annotation), so no
    part of the schema is skipped on the fast path by accident."""
    known = set(schema_check._KEYWORDS) | schema_check._ANNOTATIONS | {"then", "else"}
    found: set[str] = set()

    def walk(s: Any) -> None:
        if isinstance(s, dict):
            for k, v in s.items():
                found.add(k)
                if k in ("properties", "$defs"):
                    for sub in v.values():
                        walk(sub)
                elif k not in ("enum", "const", "default", "examples", "required"):
                    walk(v)
        elif isinstance(s, list):
            for sub in s:
                walk(sub)

    walk(schema())
    assert found - known == set()


def test_an_unknown_keyword_means_not_sure():
    """A keyword schema_check does not evaluate makes it answer False, so jsonschema decides."""
    assert not valid({"a": 1}, {"type": "object", "patternProperties": {"^a$": True}})
    assert not valid("x", {"dependentSchemas": {}})
    assert not valid("x", {"$ref": "other.json#/x"})
    assert not valid("x", {"allOf": [{"$id": "https://elsewhere/", "type": "string"}]})


def test_a_fault_still_gets_jsonschemas_messages():
    """A config at fault is described by jsonschema: JSON path, message and the did-you-mean hint."""
    with pytest.raises(ConfigError) as e:
        from_dict({"models": [{"name": "m", "provider": "olama", "model": "m"}], "rooter": {}}, env={})
    problems = dict(e.value.problems)
    assert "'rooter' was unexpected" in problems["$"] and "did you mean 'router'" in problems["$"]
    assert "'olama' is not one of" in problems["$.models[0].provider"]
    assert "did you mean 'ollama'" in problems["$.models[0].provider"]


def test_serving_a_good_config_does_not_import_jsonschema(tmp_path):
    """The start-up path (import the daemon, load and validate a good config) never imports jsonschema;
    a bad config does, to describe its faults."""
    code = ("import sys\nfrom litegate.service import daemon\nfrom litegate.config import ConfigError, load\n"
            "try:\n    load(sys.argv[1], {})\nexcept ConfigError:\n    pass\nprint('jsonschema' in sys.modules)")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": [], "rooter": {}}))
    runs = {path: subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT)
            for path in (ROOT / "config" / "litegate.example.json", bad)}
    assert [r.stdout.strip() for r in runs.values()] == ["False", "True"], [r.stderr for r in runs.values()]
