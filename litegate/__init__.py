"""litegate: one OpenAI-compatible address in front of Ollama, OpenAI-compatible servers and cloud LLMs."""

__version__ = "0.1.0"
