"""The Ollama face: Ollama's native API (/api/...) served by litegate, so apps that speak only
Ollama (Enchanted, Home Assistant, Open WebUI's Ollama connection, Copilot's Ollama provider)
reach every configured model by swapping one address (ollama.md §8, mapping.md §7).

request: bodies in -> `Inbound` (the internal ChatRequest plus what only Ollama understands);
stream: NDJSON StreamWriters for /api/chat and /api/generate; reply: whole replies and errors;
models: /api/tags, /api/show, /api/ps and the `name:tag` spelling; timing: timestamps, durations.
"""

from __future__ import annotations

from litegate.surfaces.base import Surface
from litegate.surfaces.ollama.reply import render_error

SURFACE = Surface(name="ollama", render_error=render_error, missing_key_hint=(
    "; or, for Ollama apps that cannot send a key, list this client's network ({remote}) in auth.trusted_networks"))
