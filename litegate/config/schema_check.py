"""Does a document satisfy config.schema.json? A yes/no answer without importing jsonschema.

Importing jsonschema (with referencing, rpds and the bundled metaschemas) costs ~2.7 MB of resident
memory and ~30 ms, paid on every start for a check that passes. So the config is first checked
here, against the same schema file, by this small evaluator of the JSON Schema 2020-12 keywords
the file uses, with jsonschema's semantics (booleans are not numbers, 1.0 is an integer, enum and
uniqueItems tell true from 1). Only a document this finds at fault goes to jsonschema, which
then names every problem with its JSON path, so the messages are jsonschema's own. A keyword
this does not know answers "not sure" (False): the document then takes jsonschema's path too, so
a new keyword in the schema can only cost time, never let a bad config through.
"""

from __future__ import annotations

import re
from typing import Any


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"})
_TYPES = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
}


def valid(doc: Any, schema: dict[str, Any]) -> bool:
    """True when `doc` satisfies `schema`; False when it does not, or when this cannot tell."""
    return _valid(doc, schema, schema)


def _valid(x: Any, s: Any, root: dict[str, Any]) -> bool:
    if s is True:
        return True
    if s is False or not isinstance(s, dict) or ("$id" in s and s is not root):
        return False  # a nested $id would move where "#/..." points: jsonschema resolves that
    for key, want in s.items():
        if key in _ANNOTATIONS or key in ("then", "else"):  # then/else are read with their `if`
            continue
        check = _KEYWORDS.get(key)
        if check is None or not check(x, want, s, root):
            return False
    return True


def _equal(a: Any, b: Any) -> bool:
    """jsonschema's equality: containers compared item by item, True/False never equal to 1/0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(p, q) for p, q in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return a == b


def _type(x, want, _s, _root) -> bool:
    names = want if isinstance(want, list) else [want]
    return all(n in _TYPES for n in names) and any(_TYPES[n](x) for n in names)


def _properties(x, want, _s, root) -> bool:
    return not isinstance(x, dict) or all(_valid(x[k], sub, root) for k, sub in want.items() if k in x)


def _additional(x, want, s, root) -> bool:
    if "patternProperties" in s:
        return False  # not used by the schema: jsonschema decides
    named = s.get("properties", {})
    return not isinstance(x, dict) or all(_valid(v, want, root) for k, v in x.items() if k not in named)


def _unique(x, want, _s, _root) -> bool:
    if not want or not isinstance(x, list):
        return True
    return not any(_equal(x[i], x[j]) for i in range(len(x)) for j in range(i + 1, len(x)))


def _if(x, want, s, root) -> bool:
    branch = s.get("then", True) if _valid(x, want, root) else s.get("else", True)
    return _valid(x, branch, root)


def _ref(x, want, _s, root) -> bool:
    if not isinstance(want, str) or not want.startswith("#/"):
        return False  # only local references are used; anything else is jsonschema's to resolve
    target: Any = root
    for part in want[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return False
        target = target[part]
    return _valid(x, target, root)


_KEYWORDS = {
    "type": _type,
    "enum": lambda x, want, _s, _r: any(_equal(x, v) for v in want),
    "const": lambda x, want, _s, _r: _equal(x, want),
    "properties": _properties,
    "additionalProperties": _additional,
    "required": lambda x, want, _s, _r: not isinstance(x, dict) or all(k in x for k in want),
    "minProperties": lambda x, want, _s, _r: not (isinstance(x, dict) and len(x) < want),
    "items": lambda x, want, _s, root: not isinstance(x, list) or all(_valid(v, want, root) for v in x),
    "minItems": lambda x, want, _s, _r: not (isinstance(x, list) and len(x) < want),
    "uniqueItems": _unique,
    "minLength": lambda x, want, _s, _r: not (isinstance(x, str) and len(x) < want),
    "maxLength": lambda x, want, _s, _r: not (isinstance(x, str) and len(x) > want),
    "pattern": lambda x, want, _s, _r: not isinstance(x, str) or re.search(want, x) is not None,
    "minimum": lambda x, want, _s, _r: not (_is_number(x) and x < want),
    "maximum": lambda x, want, _s, _r: not (_is_number(x) and x > want),
    "exclusiveMinimum": lambda x, want, _s, _r: not (_is_number(x) and x <= want),
    "exclusiveMaximum": lambda x, want, _s, _r: not (_is_number(x) and x >= want),
    "allOf": lambda x, want, _s, root: all(_valid(x, sub, root) for sub in want),
    "anyOf": lambda x, want, _s, root: any(_valid(x, sub, root) for sub in want),
    "oneOf": lambda x, want, _s, root: sum(_valid(x, sub, root) for sub in want) == 1,
    "not": lambda x, want, _s, root: not _valid(x, want, root),
    "if": _if,
    "$ref": _ref,
}
