"""What Ollama clients learn about models: /api/tags, /api/show and /api/ps bodies, and names.

Clients are strict here (ollama.md §8.2-§8.4): Zed and OllamaKit drop the whole list when one
`details` string or `size`/`digest`/`modified_at` is missing; Copilot and Zed read
`model_info["<arch>.context_length"]` and need `capabilities` to offer tools and images; Open WebUI
appends `:latest` to any name without a tag, so an alias `gpt` is listed as `gpt:latest` and both
spellings resolve. The HTTP edge builds a `ModelCard` per name from config (and, for local
models, from the real Ollama's own /api/show) and this module renders it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from litegate.surfaces.ollama.timing import timestamp

LATEST = ":latest"
FALLBACK_CONTEXT = 8192  # when neither config nor the provider's usual size says
# Model ids that reason (answer with thinking) on their provider; config `capabilities` wins.
_THINKING = re.compile(r"(^|/)(o\d|gpt-5|gpt-oss|claude-(opus|sonnet|haiku)-4|claude-3-7|claude-.*-4|gemini-2\.5|"
                       r"gemini-3|deepseek-r|qwq|qwen3|magistral)", re.I)
_EMBEDDING = re.compile(r"embed", re.I)


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One name a client may use, and what litegate knows of the model behind it."""

    name: str  # client-facing: a model, route or alias name
    model: str = ""  # the backend's model id, for family and capability guesses; "" for a routed name
    capabilities: tuple[str, ...] = ()  # empty: guessed from the provider's habits and the model id
    context_length: int | None = None  # configured: what requests will actually get
    # The provider's habits, for guesses: its models' usual window (so Copilot and Zed do not fall
    # back to 4k), and whether its chat models take images.
    usual_context: int = 0
    vision: bool = False
    modified_at_ns: int = 0
    size: int = 0
    digest: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)  # the real Ollama's, when known
    model_info: Mapping[str, Any] = field(default_factory=dict)  # the real Ollama's, when known
    template: str = ""
    parameters: str = ""


# ---------------------------------------------------------------- names
def tagged(name: str) -> str:
    """The name as Ollama clients list it: `gpt` -> `gpt:latest`; `qwen3:8b` and `org/m:q4` as they are."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + LATEST


def untagged(requested: str, known: Callable[[str], bool]) -> str:
    """The configured name a client's spelling means: as written if known, else without `:latest`."""
    if not requested.endswith(LATEST) or known(requested):
        return requested
    bare = requested[: -len(LATEST)]
    return bare if known(bare) else requested


# ---------------------------------------------------------------- what a model can do
def capabilities(card: ModelCard) -> list[str]:
    if card.capabilities:
        return list(card.capabilities)
    ident = card.model or card.name
    if _EMBEDDING.search(ident):
        return ["embedding"]
    caps = ["completion", "tools"]
    if card.vision:
        caps.append("vision")
    if _THINKING.search(ident):
        caps.append("thinking")
    return caps


def family(card: ModelCard) -> str:
    """A lower-case architecture name: the real one when Ollama said, else the model id's leading word."""
    if card.details.get("family"):
        return str(card.details["family"])
    if not card.model:  # a routed name: no one model stands behind it
        return "litegate"
    found = re.match(r"[A-Za-z]+", card.model.rsplit("/", 1)[-1])
    return found.group(0).lower() if found else "litegate"


def context_length(card: ModelCard) -> int:
    if card.context_length:
        return card.context_length
    return card.usual_context or FALLBACK_CONTEXT


def details(card: ModelCard) -> dict[str, Any]:
    """Every string present (`""` is fine): a missing one fails Zed's and OllamaKit's whole list."""
    fam = family(card)
    out = {"parent_model": "", "format": "gguf", "family": fam, "families": [fam],
           "parameter_size": "", "quantization_level": ""}
    for key, value in card.details.items():
        if value is not None:
            out[key] = value
    return out


def digest(card: ModelCard) -> str:
    return card.digest or hashlib.sha256(card.name.encode()).hexdigest()


# ---------------------------------------------------------------- bodies
def _entry(card: ModelCard) -> dict[str, Any]:
    name = tagged(card.name)
    return {"name": name, "model": name, "modified_at": timestamp(card.modified_at_ns), "size": card.size,
            "digest": digest(card), "details": details(card), "capabilities": capabilities(card)}


def tags(cards: list[ModelCard]) -> bytes:
    """GET /api/tags: every model the caller may use."""
    return orjson.dumps({"models": [_entry(card) for card in cards]})


def show(card: ModelCard, requested: str, user_agent: str = "") -> bytes:
    """POST /api/show: always `capabilities` and a `model_info` with `<arch>.context_length`."""
    arch = str(card.model_info.get("general.architecture") or family(card))
    info: dict[str, Any] = {"general.architecture": arch, "general.basename": card.name.split(":", 1)[0]}
    info.update(card.model_info)
    info["general.architecture"] = arch
    info.setdefault(f"{arch}.context_length", context_length(card))
    if card.context_length:  # configured (or the loaded size): what requests will actually get
        info[f"{arch}.context_length"] = card.context_length
    if user_agent.startswith("GitHubCopilotChat/"):
        info["general.basename"] = requested  # Copilot shows this as the model's name, as real Ollama echoes it
    return orjson.dumps({
        "modelfile": f"FROM {card.model or card.name}\n", "parameters": card.parameters,
        "template": card.template or "{{ .Prompt }}", "details": details(card), "model_info": info,
        "capabilities": capabilities(card), "modified_at": timestamp(card.modified_at_ns),
    })


@dataclass(frozen=True, slots=True)
class Running:
    """A model in use: loaded on an Ollama, or recently answered through litegate."""

    card: ModelCard
    expires_at: str  # RFC 3339, as the Ollama that has it loaded said
    size: int = 0
    size_vram: int = 0
    context_length: int | None = None


def ps(running: list[Running]) -> bytes:
    """GET /api/ps: `{"models": []}` is valid; HA reads model/size/size_vram, Open WebUI name/expires_at."""
    out = []
    for r in running:
        name = tagged(r.card.name)
        out.append({"name": name, "model": name, "size": r.size, "digest": digest(r.card),
                    "details": details(r.card), "expires_at": r.expires_at,
                    "size_vram": r.size_vram, "context_length": r.context_length or context_length(r.card)})
    return orjson.dumps({"models": out})


def version(number: str) -> bytes:
    return orjson.dumps({"version": number})
