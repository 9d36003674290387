"""The PROVIDERS table: provider name -> pure translation module (see base.Provider).

Adding a backend is one module and one row here; nothing else in litegate names a provider.
"""

from __future__ import annotations

from types import MappingProxyType

from litegate.providers import anthropic
from litegate.providers import gemini
from litegate.providers import ollama
from litegate.providers import openai
from litegate.providers.base import NativeRequest, Passthrough, Provider, UpstreamRequest, Vectors

PROVIDERS: MappingProxyType[str, Provider] = MappingProxyType({
    "ollama": ollama.PROVIDER,
    "openai": openai.PROVIDER,
    "anthropic": anthropic.PROVIDER,
    "gemini": gemini.PROVIDER,
})

__all__ = ["PROVIDERS", "NativeRequest", "Passthrough", "Provider", "UpstreamRequest", "Vectors"]
