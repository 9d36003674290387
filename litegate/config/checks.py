"""Checks of a config document that JSON Schema cannot express, and the values derived at load.

Secrets resolved from the environment (a missing variable names the model and the variable),
references between models, aliases, fallbacks and routes (unknown names, cycles, rules that can
never match), and deployment ids. Every problem is (JSON path, reason), like the schema's own.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


_SECRETISH = re.compile(r"^(sk-|sk_|AIza|xai-|gsk_|ghp_)|^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-+/=.]{28,}$")
# Go's time.ParseDuration, which Ollama uses for a string keep_alive ("30m", "1h30m", "-1s"); "0" is special.
_GO_DURATION = re.compile(r"^[-+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")


def looks_secret(value: str) -> bool:
    """A key pasted where a name belongs: a known key prefix, or a long unbroken mix of letters and digits."""
    return bool(_SECRETISH.search(value))


def did_you_mean(name: str, choices: list[str]) -> str:
    """' (did you mean 'router'?)' for the nearest valid name, or nothing when none is near."""
    near = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def deployments(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """What the schema lets through but Ollama would refuse or misread."""
    problems = []
    for i, m in enumerate(doc["models"]):
        if m["provider"] != "ollama":
            continue
        base = (m.get("api_base") or "").rstrip("/")
        if base.endswith("/v1"):
            problems.append((f"$.models[{i}].api_base", f"model '{m['name']}': {m['api_base']!r} is Ollama's "
                             f"OpenAI-compatible API; provider ollama talks to its native API at the root: use "
                             f"{base[:-3]!r} (or provider openai to keep /v1)"))
        keep = m.get("keep_alive")
        if isinstance(keep, str) and not _GO_DURATION.match(keep.strip()):
            problems.append((f"$.models[{i}].keep_alive", f"model '{m['name']}': keep_alive {keep!r} is not a "
                             "duration Ollama reads: use e.g. \"30m\", \"2h\", \"90s\", or a number of seconds "
                             "(-1 keeps the model loaded, 0 unloads it at once)"))
    return problems


def resolve_secrets(doc: dict[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    problems = []
    for i, m in enumerate(doc["models"]):
        var = m.get("api_key_env")
        if var:
            if not env.get(var):
                problems.append((f"$.models[{i}].api_key_env", f"model '{m['name']}': environment variable {var} is not set"))
            else:
                m["api_key"] = env[var]
    seen: set[str] = set()
    for i, k in enumerate(doc.get("auth", {}).get("keys", [])):
        if k["name"] in seen:
            problems.append((f"$.auth.keys[{i}].name", f"key name '{k['name']}' is used twice"))
        seen.add(k["name"])
        if ("key_env" in k) == ("key_hash" in k):
            problems.append((f"$.auth.keys[{i}]", f"key '{k['name']}': give exactly one of key_env or key_hash"))
        elif "key_env" in k and not env.get(k["key_env"]):
            problems.append((f"$.auth.keys[{i}].key_env", f"key '{k['name']}': environment variable {k['key_env']} is not set"))
        elif "key_env" in k:
            k["secret"] = env[k["key_env"]]
    problems += _trusted_networks(doc.get("auth", {}), seen)
    ws = doc.get("web_search")
    if ws:
        var = ws.get("api_key_env")
        if var and not env.get(var):
            problems.append(("$.web_search.api_key_env", f"web_search: environment variable {var} is not set"))
        elif var:
            ws["api_key"] = env[var]
    state = doc.get("state")
    var = state.get("password_env") if state else None
    if var and not env.get(var):
        problems.append(("$.state.password_env", f"state: environment variable {var} is not set"))
    elif var:
        state["password"] = env[var]
    for i, m in enumerate(doc["models"]):
        if m.get("server_tools") and not ws and "web_search" in m["server_tools"]:
            problems.append((f"$.models[{i}].server_tools", f"model '{m['name']}' uses web_search but there is no "
                                                              "top-level web_search block"))
    return problems


def _trusted_networks(auth: dict[str, Any], key_names: set[str]) -> list[tuple[str, str]]:
    """Each network parses; each principal's name is its own (limits and usage count by name)."""
    problems = []
    trusted = auth.get("trusted_networks", [])
    if trusted and not auth.get("keys"):
        problems.append(("$.auth.trusted_networks", "trusted networks need auth.keys: without keys litegate is "
                                                    "open to everyone who can reach it anyway"))
    names = set(key_names)
    for i, t in enumerate(trusted):
        if t["name"] in names:
            problems.append((f"$.auth.trusted_networks[{i}].name", f"name '{t['name']}' is already a key's or "
                                                                   "another network's"))
        names.add(t["name"])
        for j, net in enumerate(t["networks"]):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                problems.append((f"$.auth.trusted_networks[{i}].networks[{j}]",
                                 f"{net!r} is not an address or CIDR block (like 100.64.0.0/10)"))
    return problems


def server(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """server.trusted_proxies must each be an address or a network."""
    problems = []
    for i, entry in enumerate(doc.get("server", {}).get("trusted_proxies", [])):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append((f"$.server.trusted_proxies[{i}]", f"{entry!r} is not an IP address or network"))
    return problems


def references(doc: dict[str, Any]) -> list[tuple[str, str]]:
    names = {m["name"] for m in doc["models"]}
    router = doc.get("router", {})
    routes = router.get("routes", {})
    problems = []
    for alias, target in router.get("aliases", {}).items():
        if target not in names and target not in routes:
            problems.append((f"$.router.aliases.{alias}", f"alias '{alias}' points to unknown model '{target}'"
                                                           + did_you_mean(target, [*names, *routes])))
        if alias in names or alias in routes:
            problems.append((f"$.router.aliases.{alias}", f"alias '{alias}' hides the model of the same name"))
    for name in router.get("strategy", {}):
        if name not in names:
            problems.append((f"$.router.strategy.{name}", f"strategy given for unknown model '{name}'"
                                                           + did_you_mean(name, list(names))))
    key_names = {k["name"] for k in doc.get("auth", {}).get("keys", [])}
    for vname, route in routes.items():
        problems += _check_route(f"$.router.routes.{vname}", vname, route, names, key_names)
    fallbacks = router.get("fallbacks", {})
    for name, chain in fallbacks.items():
        if name not in names:
            problems.append((f"$.router.fallbacks.{name}", f"fallbacks given for unknown model '{name}'"
                                                            + did_you_mean(name, list(names))))
        for j, fb in enumerate(chain):
            if fb not in names:
                problems.append((f"$.router.fallbacks.{name}[{j}]", f"fallback to unknown model '{fb}'"
                                                                    + did_you_mean(fb, list(names))))
    problems += _fallback_cycles(fallbacks)
    problems += _key_models(doc, [*names, *routes, *router.get("aliases", {})])
    return problems


def _key_models(doc: dict[str, Any], client_names: list[str]) -> list[tuple[str, str]]:
    """A key allowed a model that does not exist (a typo) would be refused that model at every request."""
    problems = []
    for i, k in enumerate(doc.get("auth", {}).get("keys", [])):
        for j, pattern in enumerate(k.get("models", ["*"])):
            wild = any(c in pattern for c in "*?[")  # a pattern may be meant for models still to come
            if not wild and pattern not in client_names:
                problems.append((f"$.auth.keys[{i}].models[{j}]", f"key '{k['name']}' is allowed model "
                                 f"'{pattern}', which is no model, route or alias" + did_you_mean(pattern, client_names)))
    return problems


def _check_route(path: str, vname: str, route: dict[str, Any], names: set[str],
                 key_names: set[str]) -> list[tuple[str, str]]:
    """A virtual model's rules must point at real models and each must be able to match."""
    problems = []
    if vname in names:
        problems.append((path, f"route '{vname}' has the name of a model; pick another name"))
    for where, target in [(f"{path}.default", route["default"])] + [
            (f"{path}.rules[{i}].model", r["model"]) for i, r in enumerate(route["rules"])]:
        if target not in names:
            problems.append((where, f"route '{vname}' points to unknown model '{target}'"
                                    + did_you_mean(target, list(names))))
    classifier = route.get("classifier")
    if classifier:
        if classifier["model"] not in names:
            problems.append((f"{path}.classifier.model", f"classifier model '{classifier['model']}' is unknown"))
        if classifier.get("default") and classifier["default"] not in classifier["labels"]:
            problems.append((f"{path}.classifier.default", f"default label '{classifier['default']}' is not one of the labels"))
    labels = set(classifier["labels"]) if classifier else set()
    for i, rule in enumerate(route["rules"]):
        reason = _never_matches(rule["when"], labels, key_names) or _shadowed(route["rules"][:i])
        if reason:
            problems.append((f"{path}.rules[{i}]", f"rule can never match: {reason}"))
    return problems


def _never_matches(when: dict[str, Any], labels: set[str], key_names: set[str]) -> str | None:
    if "keywords" in when and not when["keywords"]:
        return "keywords is empty"
    if "keys" in when and not set(when["keys"]) & key_names:
        return "none of its keys is in auth.keys"
    if when.get("always") is False:
        return "always is false"
    if "label" in when and when["label"] not in labels:
        return f"label '{when['label']}' is not a label of this route's classifier"
    if when.get("min_tokens", 0) > when.get("max_tokens", float("inf")):
        return "min_tokens is above max_tokens"
    if "regex" in when:
        try:
            re.compile(when["regex"])
        except re.error as e:
            return f"regex does not compile: {e}"
    return None


def _shadowed(earlier: list[dict[str, Any]]) -> str | None:
    for j, rule in enumerate(earlier):
        if rule["when"] == {"always": True}:
            return f"rule {j} before it always matches"
    return None


def _fallback_cycles(fallbacks: dict[str, list[str]]) -> list[tuple[str, str]]:
    problems, done = [], set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = " -> ".join(trail[trail.index(name):] + [name])
            problems.append((f"$.router.fallbacks.{trail[-1]}", f"fallback cycle: {cycle}"))
            return
        if name in done:
            return
        for fb in fallbacks.get(name, []):
            visit(fb, trail + [name])
        done.add(name)

    for name in fallbacks:
        visit(name, [])
    return problems


def assign_ids(models: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for m in models:
        if m.get("id"):
            continue
        base = f"{m['provider']}/{m['model']}"
        if m.get("api_base"):
            base += "@" + (urlsplit(m["api_base"]).netloc or m["api_base"])
        n = seen[base] = seen.get(base, 0) + 1
        m["id"] = base if n == 1 else f"{base}#{n}"
