"""Fake LLM backends (aiohttp apps) used by the test-suite; see README.md."""
