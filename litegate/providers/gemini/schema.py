"""The Gemini schema sanitiser: JSON Schema -> the OpenAPI-3.0 subset Gemini accepts (gemini.md §2).

Gemini's `Schema` rejects most of JSON Schema with a 400 (`$defs`, `$ref`, `additionalProperties`,
`const`, array-valued `type`, `title`/`default` in practice, ...). `sanitize` returns a new
structure and never touches its input: local `$ref`s are inlined (a recursive one is cut to a
plain object), `oneOf` becomes `anyOf`, `allOf` members are merged, `const` becomes `enum`,
`type: [T, "null"]` and `anyOf: [X, {"type": "null"}]` become `nullable: true`, and only the
whitelisted keywords survive. Property names under `properties` are kept as they are.
"""

from __future__ import annotations

from typing import Any

# The output is built key by key, so only these keywords can appear in it: type, format,
# description, nullable, enum, items, properties, required, propertyOrdering, minItems,
# maxItems, minimum, maximum, anyOf.
# Gemini accepts only these `format` values (others fail with INVALID_ARGUMENT).
_FORMATS = frozenset({"enum", "date-time", "int32", "int64", "float", "double"})
_MAX_DEPTH = 40


def sanitize(schema: Any) -> dict[str, Any]:
    """A Gemini-safe copy of a JSON Schema (an empty dict when nothing usable is left)."""
    if not isinstance(schema, dict):
        return {}
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, defs, (), 0)


def _clean(node: Any, defs: dict[str, Any], refs: tuple[str, ...], depth: int) -> dict[str, Any]:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return {}
    if "$ref" in node:
        node, refs = _inline_ref(node, defs, refs)
        if node is None:
            return {"type": "object"}
    if isinstance(node.get("allOf"), list):
        node, refs = _merge_all_of(node, defs, refs)
    out: dict[str, Any] = {}
    _copy_scalars(node, out)
    _type_and_nullable(node, out)
    _enum(node, out)
    sub = lambda s: _clean(s, defs, refs, depth + 1)  # noqa: E731
    if isinstance(node.get("properties"), dict):
        out["properties"] = {name: sub(s) for name, s in node["properties"].items()}
        required = [r for r in node.get("required") or () if r in out["properties"]]
        if required:
            out["required"] = required
    items = node.get("items")
    if isinstance(items, list):  # tuple form: the first item's schema is the best we can say
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = sub(items)
    members = node.get("anyOf") if isinstance(node.get("anyOf"), list) else node.get("oneOf")
    if isinstance(members, list):
        _any_of([sub(m) for m in members], out)
    _infer_type(out)
    return out


def _inline_ref(node: dict[str, Any], defs: dict[str, Any], refs: tuple[str, ...]):
    """The `$ref` target merged with the node's siblings; None when it is recursive or unknown."""
    ref = node["$ref"]
    name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
    is_local = isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/"))
    if not is_local or name not in defs or ref in refs:
        return None, refs
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    target = defs[name] if isinstance(defs[name], dict) else {}
    return {**target, **siblings}, refs + (ref,)


def _merge_all_of(node: dict[str, Any], defs: dict[str, Any], refs: tuple[str, ...]):
    """Flatten `allOf` (members' refs inlined): properties and required unioned, else first wins."""
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for member in node["allOf"]:
        if isinstance(member, dict) and "$ref" in member:
            member, refs = _inline_ref(member, defs, refs)
        if not isinstance(member, dict):
            continue
        for key, value in member.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**value, **(merged.get("properties") or {})}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
            else:
                merged.setdefault(key, value)
    return merged, refs


def _copy_scalars(node: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("description", "minItems", "maxItems", "minimum", "maximum", "nullable"):
        if key in node:
            out[key] = node[key]
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]
    ordering = node.get("propertyOrdering")
    if isinstance(ordering, list):
        out["propertyOrdering"] = list(ordering)


def _type_and_nullable(node: dict[str, Any], out: dict[str, Any]) -> None:
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        elif len(kinds) > 1:
            out["anyOf"] = [{"type": k} for k in kinds]
        elif kind:
            out["type"] = "null"
    elif isinstance(kind, str):
        out["type"] = kind


def _enum(node: dict[str, Any], out: dict[str, Any]) -> None:
    """Gemini's enum is `list[str]`: keep string enums; describe other values instead."""
    values = [node["const"]] if "const" in node else node.get("enum")
    if not isinstance(values, list):
        return
    if None in values:
        out["nullable"] = True
        values = [v for v in values if v is not None]
    if values and all(isinstance(v, str) for v in values):
        out["enum"] = list(values)
        out.setdefault("type", "string")
    elif values:
        allowed = "Allowed values: " + ", ".join(map(str, values))
        out["description"] = f"{out['description']} ({allowed})" if out.get("description") else allowed


def _any_of(members: list[dict[str, Any]], out: dict[str, Any]) -> None:
    """`anyOf` without its `{"type": "null"}` member; a single survivor is merged in."""
    kept = [m for m in members if m.get("type") != "null"]
    if len(kept) < len(members):
        out["nullable"] = True
    if len(kept) == 1:
        for key, value in kept[0].items():
            out.setdefault(key, value)
    elif kept:
        out["anyOf"] = kept


def _infer_type(out: dict[str, Any]) -> None:
    if "type" in out or "anyOf" in out:
        return
    if "properties" in out:
        out["type"] = "object"
    elif "items" in out:
        out["type"] = "array"
