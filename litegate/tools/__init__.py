"""Server-side tools the gateway runs for the model: web search (Serper, SearXNG) and page fetch.

These are I/O adapters (layer 3): they take an aiohttp ClientSession from the caller, never a
web app, and keep no state of their own; the app owns the SearchCache. Every failure is a
ToolError whose message the tool loop hands to the model as the tool's result. What the model
reads is rendered by render_results / render_page: web text between markers it cannot forge.
"""

from litegate.tools.cache import SearchCache
from litegate.tools.errors import ToolError
from litegate.tools.fetch_page import fetch_url
from litegate.tools.render import render_page, render_results
from litegate.tools.search import SearchResult, searxng_search, serper_search

__all__ = ["SearchCache", "SearchResult", "ToolError", "fetch_url", "render_page", "render_results",
           "searxng_search", "serper_search"]
