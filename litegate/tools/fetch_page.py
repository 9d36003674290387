"""Fetch a web page for the model: guarded download, then readable text with its structure.

The download is upstream.fetch (the guarded fetch: http(s) only, private addresses and
redirects to them refused unless allowed, size and time capped); its FetchRefused becomes a
ToolError. HTML becomes text with the standard library's html.parser: page chrome (script,
style, nav, header, footer, noscript, svg, hidden elements) is dropped, headings, paragraphs,
list items and table rows become lines, whitespace collapses, entities are decoded. Plain text,
Markdown and JSON pass through; any other content type is refused.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from html.parser import HTMLParser

import aiohttp

from litegate.upstream import FetchRefused, fetch, media_type
from litegate.tools.errors import ToolError
from litegate.tools.render import clip, render_page

__all__ = ["fetch_url", "html_to_text_async", "render_page"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown", "application/json"})
SKIP = frozenset({"script", "style", "nav", "header", "footer", "noscript", "svg", "template", "iframe",
                  "object", "canvas", "select", "button", "dialog"})
CHROME = frozenset({"nav", "header", "footer", "dialog"})
CONTENT = frozenset({"article", "main"})  # inside these, <header>/<footer> hold the article's own title
BLOCK = frozenset({"p", "div", "section", "article", "main", "aside", "blockquote", "br", "hr", "tr", "table",
                   "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form", "fieldset", "details",
                   "summary", "address", "caption", "body", "html"})
HEADINGS = {f"h{n}": "#" * n + " " for n in range(1, 7)}
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                  "source", "track", "wbr"})
_FEED = 16 * 1024  # even dense markup parses a slice in tens of ms
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _Extractor(HTMLParser):
    """Collects the title and the readable lines of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.lines: list[str] = []
        self.chars = 0
        self._line: list[str] = []
        self._prefix = ""
        self._skip: str | None = None  # the tag whose subtree is being dropped
        self._skip_depth = 0
        self._in_title = self._seen_title = False
        self._pre = 0
        self._content = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is not None:
            self._skip_depth += tag == self._skip
            return
        if self._skips(tag, attrs):
            if tag in BLOCK or tag in CHROME:
                self._flush()  # dropped blocks still separate the text around them
            self._skip, self._skip_depth = tag, 1
            return
        self._content += tag in CONTENT
        if tag == "title" and not self._seen_title:
            self._in_title = self._seen_title = True
        elif tag in HEADINGS or tag == "li":
            self._flush()
            self._prefix = HEADINGS.get(tag, "- ")
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in BLOCK:
            self._flush()
        elif tag in ("td", "th") and self._line:
            self._line.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is None and tag in BLOCK:
            self._flush()  # <br/>, <hr/>; a self-closed <svg/> or <div hidden/> holds nothing

    def handle_endtag(self, tag: str) -> None:
        if self._skip is not None:
            if tag == self._skip:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip = None
            return
        self._content -= tag in CONTENT and self._content > 0
        if tag == "title":
            self._in_title = False
        elif tag in HEADINGS or tag == "li":
            self._flush()
            self._prefix = ""
        elif tag == "pre":
            self._flush()
            self._pre = max(0, self._pre - 1)
        elif tag in BLOCK:
            self._flush()

    def _skips(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in ("header", "footer") and self._content:
            return _hidden(attrs)
        return tag in SKIP or (tag not in VOID and _hidden(attrs))

    def handle_data(self, data: str) -> None:
        if self._skip is not None:
            return
        if self._in_title:
            self.title.append(data)
        elif self._pre:
            first, *rest = data.split("\n")
            self._line.append(first)
            for part in rest:
                self._flush()
                self._line.append(part)
        else:
            self._line.append(data)

    def _flush(self) -> None:
        text = "".join(self._line)
        self._line = []
        text = text.rstrip() if self._pre else " ".join(text.split())
        if text.strip():
            self.lines.append(self._prefix + text)
            self.chars += len(self.lines[-1]) + 1
            self._prefix = ""

    def finish(self) -> tuple[str, str]:
        self._flush()
        return " ".join("".join(self.title).split()), "\n".join(self.lines)


def _hidden(attrs: list[tuple[str, str | None]]) -> bool:
    for name, value in attrs:
        if name == "hidden" or (name == "aria-hidden" and (value or "").lower() == "true"):
            return True
        if name == "style" and re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", value or "", re.I):
            return True
    return False


async def html_to_text_async(html: str, max_chars: int) -> tuple[str, str]:
    """(title, readable text), parsing stopped once max_chars of text are collected. The parser is fed
    slice by slice, yielding to the loop between slices: a tag-heavy page (megabytes of hidden
    markup) costs seconds of parsing, which must not stall every other request."""
    parser = _Extractor()
    try:
        for start in range(0, len(html), _FEED):
            parser.feed(html[start:start + _FEED])
            if parser.chars > max_chars:
                return parser.finish()
            await asyncio.sleep(0)
        parser.close()
    except (AssertionError, ValueError):
        pass  # html.parser gave up on broken markup: keep what it read so far
    return parser.finish()


def decode(body: bytes, charset: str | None = None, *, sniff_meta: bool = False) -> str:
    """Bytes to text: BOM, then the declared charset, then a <meta> one, then UTF-8, then cp1252."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, "replace")
    if charset is None and sniff_meta and (m := _META_CHARSET.search(body[:4096])):
        charset = m.group(1).decode("ascii")
    if charset:
        try:
            return body.decode(codecs.lookup(charset).name, "replace")
        except LookupError:
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def _kind(content_type: str, body: bytes) -> str:
    if content_type in HTML_TYPES:
        return "html"
    if content_type in TEXT_TYPES or content_type.endswith("+json"):
        return "text"
    if not content_type:  # no header: trust what the bytes look like
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            return "html"
        if b"\x00" not in body[:4096]:
            return "text"
    raise ToolError(f"cannot read content of type {content_type or 'unknown'} (only HTML, plain text and JSON)",
                    code="unsupported")


async def fetch_url(session: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout_s: float,
                    allow_private: bool, max_chars: int) -> tuple[str, str]:
    """(title, text) of a web page, text at most max_chars; ToolError when it cannot be had.

    `session` should come from upstream.fetch_session(allow_private): its resolver refuses host
    names that resolve to private addresses, which the literal-address check here cannot see.
    """
    try:
        content_type, body = await fetch(session, url, max_bytes=max_bytes, timeout_s=timeout_s,
                                         allow_private=allow_private)
    except FetchRefused as e:
        raise ToolError(f"cannot fetch this URL: {e}", code="refused", retryable="no answer within" in str(e)) from None
    except ValueError:
        raise ToolError("not a valid URL", code="bad_request") from None
    mime, charset = media_type(content_type)
    kind = _kind(mime, body)
    if kind == "html":
        title, text = await html_to_text_async(decode(body, charset, sniff_meta=True), max_chars)
    else:
        title, text = "", decode(body, charset).strip()
    return title, clip(text, max_chars)
