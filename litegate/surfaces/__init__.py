"""The SURFACES table: each inbound API litegate serves, and which paths belong to it.

Adding a face is one package here (pure translation, see base.py), one row below, and one
module of routes in litegate/http/. The error middleware renders every failure with the face
the request came in on.
"""

from __future__ import annotations

from types import MappingProxyType

from litegate.surfaces import anthropic, ollama, openai, responses
from litegate.surfaces.base import Surface

SURFACES: MappingProxyType[str, Surface] = MappingProxyType({
    "openai": openai.SURFACE,
    "ollama": ollama.SURFACE,
    "anthropic": anthropic.SURFACE,
    "responses": responses.SURFACE,
})

# (path prefix, face): the first match names the face; everything else is OpenAI's.
PATHS: tuple[tuple[str, str], ...] = (
    ("/api/", "ollama"),
    ("/v1/messages", "anthropic"),
    ("/v1/responses", "responses"),
    ("/responses", "responses"),
)


def surface_for(path: str) -> Surface:
    for prefix, name in PATHS:
        if path.startswith(prefix):
            return SURFACES[name]
    return SURFACES["openai"]


__all__ = ["SURFACES", "PATHS", "Surface", "surface_for"]
