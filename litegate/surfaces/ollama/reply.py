"""Whole Ollama replies: /api/chat and /api/generate with stream:false, the load/unload reply,
embeddings in both shapes, and errors as `{"error": "…"}` with the status Ollama would use.

Non-streaming replies are one JSON object shaped like a stream's done line with the whole
message in it (ollama.md §2, §8.5-§8.8).
"""

from __future__ import annotations

from typing import Any

import orjson
from msgspec import UNSET

from litegate.errors import GatewayError
from litegate.wire import ChatCompletion
from litegate.surfaces.base import json_object
from litegate.surfaces.ollama.stream import (
    OutCall, OutFunction, OutMessage, final_line,
)
from litegate.surfaces.ollama.timing import Timing, now


def chat(model: str, completion: ChatCompletion, timing: Timing) -> bytes:
    timing.mark()
    choice = completion.choices[0]
    m = choice.message
    message = OutMessage(content=m.content or "")
    if m.reasoning_content:
        message.thinking = m.reasoning_content
    if m.tool_calls:
        message.tool_calls = [OutCall(c.id, OutFunction(c.function.name, json_object(c.function.arguments) or {}, n))
                              for n, c in enumerate(m.tool_calls)]
    return final_line(timing, completion.usage or None, choice.finish_reason, model=model, created_at=now(),
                      message=message)


def generate(model: str, completion: ChatCompletion, timing: Timing) -> bytes:
    timing.mark()
    choice = completion.choices[0]
    thinking = choice.message.reasoning_content or UNSET  # left out when empty, as Ollama leaves it out
    return final_line(timing, completion.usage or None, choice.finish_reason, model=model, created_at=now(),
                      response=choice.message.content or "", thinking=thinking)


def loaded(kind: str, model: str, reason: str) -> bytes:
    """The single object an empty chat or generate gets: the model is (un)loaded, nothing answered.

    Sent whole even when streaming was asked for, as Ollama does; Open WebUI parses it as one object."""
    body: dict[str, Any] = {"model": model, "created_at": now()}
    if kind == "chat":
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    body["done"] = True
    body["done_reason"] = reason
    return orjson.dumps(body)


def embed(model: str, vectors: list[list[float]], prompt_tokens: int, timing: Timing) -> bytes:
    """/api/embed: always a list of vectors (in input order), with the counts and durations Ollama adds."""
    return orjson.dumps({"model": model, "embeddings": vectors,
                         "total_duration": timing.metrics(None)["total_duration"], "load_duration": 0,
                         "prompt_eval_count": prompt_tokens})


def embeddings(vectors: list[list[float]]) -> bytes:
    """/api/embeddings (the older route): one vector under `embedding` ([] for an empty prompt)."""
    return orjson.dumps({"embedding": vectors[0] if vectors else []})


# ---------------------------------------------------------------- errors
def render_error(err: GatewayError) -> tuple[int, bytes]:
    """Ollama's error shape. The status stays the gateway's: it already follows Ollama's classes
    (400 bad request, 404 unknown model, 500/503 backend trouble) and adds what a gateway has
    (401/403 keys, 429 limits, 502/504 backend down or slow; ollama.md §8.8)."""
    return err.status, orjson.dumps({"error": err.message})
