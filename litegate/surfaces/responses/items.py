"""Small shared pieces of the Responses face: ids, the reasoning token, tool kinds, usage, errors.

The reasoning token is how a model's thoughts survive stateless replay (Codex sends the whole
history each turn with `store: false`): a reasoning item's `encrypted_content` is `lg1.` +
base64url(JSON {"t": thinking text}). It is opaque to clients, who hand it back unchanged, and
request.py turns it into the next assistant message's `reasoning_content`, which the providers
send back as the model's own thinking (Ollama `thinking`, ...). It is not a secret: it only
carries text the same client was already shown as the reasoning summary.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from litegate.errors import GatewayError
from litegate.surfaces.base import token, untoken
from litegate.wire import Usage


def new_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(128):032x}"  # unique, not secret: no system call


def encode_reasoning(text: str) -> str:
    return token(orjson.dumps({"t": text}))


def decode_reasoning(encrypted: str | None) -> str | None:
    """Thinking text from one of our tokens; None for a foreign, empty or damaged one (dropped)."""
    try:
        value = orjson.loads(untoken(encrypted) or b"null")
    except orjson.JSONDecodeError:
        return None
    text = value.get("t") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text else None


@dataclass(frozen=True, slots=True)
class ToolKind:
    """What a chat function stands for on this face, so a call is reported as the client declared it."""

    kind: str  # "function" | "custom" | "local_shell"
    name: str  # the client's own name (without namespace)
    namespace: str | None = None


def conversation(items: list, output: list[dict]) -> list:
    """What a stored response hands its follow-up (previous_response_id): the request's input items,
    then the output items, with each reasoning item's token filled in so the thoughts carry over even
    when the client did not ask for encrypted_content."""
    out = list(items)
    for item in output:
        if item.get("type") == "reasoning" and not item.get("encrypted_content"):
            text = "".join(s.get("text", "") for s in item.get("summary") or ())
            item = {**item, "encrypted_content": encode_reasoning(text)} if text else item
        out.append(item)
    return out


def is_codex(headers: Mapping[str, str]) -> bool:
    """Codex CLI says who it is in `originator` (codex_cli_rs, codex_exec, ...) and its User-Agent."""
    originator = headers.get("originator", "")
    return originator.startswith("codex") or headers.get("user-agent", "").lower().startswith("codex")


def usage_json(usage: Usage | None, estimate: int) -> dict:
    """ResponseUsage with every key as an integer (Codex rejects the turn otherwise).

    Without backend usage the input is estimated (chars/4): Codex budgets its context from it.
    """
    if usage is None:
        prompt, completion, cached, reasoning = estimate, 0, 0, 0
    else:
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        cached = getattr(usage.prompt_tokens_details, "cached_tokens", 0) or 0
        reasoning = getattr(usage.completion_tokens_details, "reasoning_tokens", 0) or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


# ResponseErrorCode has no code for a full context window, but OpenAI sends it and Codex stops
# retrying on it, so it passes through; everything else not a rate limit is a server_error.
_PASSED_CODES = frozenset({"rate_limit_exceeded", "context_length_exceeded", "insufficient_quota"})


def failure(err: GatewayError) -> dict:
    """`response.error` for a failure after the stream began: {code, message}.

    A known wait goes into the message as "try again in Ns", the phrase Codex reads its retry
    delay from.
    """
    code = err.code if err.code in _PASSED_CODES else "server_error"
    message = err.message
    if code == "rate_limit_exceeded" and err.retry_after is not None:
        message = f"{message} Please try again in {max(1, int(err.retry_after + 0.999))}s."
    return {"code": code, "message": message}
