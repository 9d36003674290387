"""The Responses face's routes: POST /v1/responses (stream and not), GET and DELETE /v1/responses/{id}.

The same steps as every face (decode, admit, run the core, write through the face), plus what only
this API has: the history of previous_response_id read from the response store; the answer kept
there when `store` is true (queued before its last frame goes out, so the client's next turn finds
it); and native pass-through when every deployment the planned model reaches serves the Responses
API itself (a "responses" row in its Provider.passthrough: OpenAI deployments with responses_api). A key reads and deletes only the responses it made.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import msgspec
import orjson
import structlog
from aiohttp import web

from litegate.core import gateway
from litegate.core.services import Call
from litegate.errors import BadRequest, GatewayError, NotFound
from litegate.http import edge
from litegate.http.appkeys import CALL, RESPONSES, SERVICES
from litegate.providers import NativeRequest
from litegate.surfaces import responses as face
from litegate.usage.responses import ResponseStore
from litegate.wire import Usage, encoder

log = structlog.get_logger("litegate.responses")


async def create(request: web.Request) -> web.StreamResponse:
    call: Call = request[CALL]
    raw = await request.read()
    body = face.decode_request(raw)
    store = request.app.get(RESPONSES)
    owner = call.key or "anonymous"
    prior = await _stored(store, owner, body.previous_response_id)
    inbound = face.to_chat(body, face.input_items_decoder.decode(prior) if prior is not None else ())
    chat = inbound.chat
    if inbound.web_search and call.cfg.web_search is None:
        # Codex declares web_search on every turn; without a search backend the model simply has no search.
        chat = msgspec.structs.replace(chat, web_search_options=None)
    call, plan = await edge.admit(request, "chat", body.model, chat, stream=body.stream)
    svc = request.app[SERVICES]
    if gateway.natively(call.cfg, plan.model, "responses"):
        return await _native(request, call, plan, chat, raw, prior, body.stream)
    if body.previous_response_id and prior is None:
        raise _no_previous(store, body.previous_response_id)
    keep = _keeper(store, owner, raw, prior) if body.store is not False else None
    if body.stream:
        writer = face.ResponsesWriter(inbound, cut_as_completed=face.is_codex(request.headers))
        return await edge.stream(request, call, gateway.chat_events(svc, call, plan, chat),
                                 _Keeping(writer, keep) if keep else writer)
    if plan.server_tools:  # the tool loop's searches become web_search_call items, so replay its events
        writer = face.ResponsesWriter(inbound, frames=False)
        await gateway.replay(svc, call, plan, chat, writer.feed)
        writer.finish()
        final = writer.final
    else:
        final = face.to_response(await gateway.chat(svc, call, plan, chat), inbound)
    if keep is not None:
        try:
            await asyncio.wrap_future(keep(final))
        except GatewayError as e:  # the answer stands; only its later retrieval is lost
            log.warning("response_not_stored", request_id=call.request_id, error=e.code)
    return edge.reply(call, final)


async def retrieve(request: web.Request) -> web.Response:
    call: Call = request[CALL]
    response_id = request.match_info["response_id"]
    found = await _stored(request.app.get(RESPONSES), call.key or "anonymous", response_id, whole=True)
    if found is None:
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    return edge.reply(call, found)


async def delete(request: web.Request) -> web.Response:
    call: Call = request[CALL]
    response_id = request.match_info["response_id"]
    store = request.app.get(RESPONSES)
    if store is None or not await store.delete(call.key or "anonymous", response_id):
        raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
    return edge.reply(call, {"id": response_id, "object": "response", "deleted": True})


# ---------------------------------------------------------------- the store
async def _stored(store: ResponseStore | None, owner: str, response_id: str | None, *,
                  whole: bool = False) -> bytes | None:
    """A stored response of this key: its conversation items, or (whole) its Response object."""
    if not response_id or store is None:
        return None
    found = await store.get(owner, response_id)
    if found is None:
        return None
    return found[0] if whole else found[1]


def _no_previous(store: ResponseStore | None, response_id: str) -> GatewayError:
    if store is None:
        return BadRequest("previous_response_id: this gateway keeps no responses (responses.store is false); "
                          "send the whole history in input", param="previous_response_id")
    return NotFound(f"Previous response with id '{response_id}' not found.", param="previous_response_id")


Keep = Callable[[dict[str, Any]], Future]


def _keeper(store: ResponseStore | None, owner: str, raw: bytes, prior: bytes | None) -> Keep | None:
    """What stores a finished response: it queues the write at once and returns the write's future."""
    if store is None:
        return None

    def keep(final: dict[str, Any]) -> Future:
        items = (orjson.loads(prior) if prior is not None else []) + _input_items(orjson.loads(raw).get("input"))
        history = encoder.encode(face.conversation(items, final["output"]))
        return store.submit_put(owner, final["id"], time.time(), encoder.encode(final), history)

    return keep


def _input_items(new: Any) -> list:
    return [{"type": "message", "role": "user", "content": new}] if isinstance(new, str) else list(new or [])


def _not_stored(fut: Future) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("response_not_stored", error=getattr(fut.exception(), "code", None))


class _Keeping:
    """A StreamWriter that stores the finished response before its terminal frame is handed out."""

    def __init__(self, inner: face.ResponsesWriter, keep: Keep) -> None:
        self.inner, self.keep = inner, keep
        self.media_type, self.keepalive = inner.media_type, inner.keepalive

    @property
    def usage(self) -> Usage | None:
        return self.inner.usage

    def feed(self, ev) -> list[bytes]:
        return self.inner.feed(ev)

    def finish(self) -> list[bytes]:
        return self._kept(self.inner.finish())

    def fail(self, err: GatewayError) -> list[bytes]:
        return self._kept(self.inner.fail(err))

    def _kept(self, frames: list[bytes]) -> list[bytes]:
        try:  # queued now, ahead of any request the client sends after reading these frames
            self.keep(self.inner.final).add_done_callback(_not_stored)
        except GatewayError as e:
            log.warning("response_not_stored", error=e.code)
        return frames


# ---------------------------------------------------------------- native pass-through
async def _native(request: web.Request, call: Call, plan, chat, raw: bytes, prior: bytes | None,
                  stream: bool) -> web.StreamResponse:
    if prior is not None:  # our own stored id: the backend cannot know it, so it gets the history itself
        doc = orjson.loads(raw)
        doc["input"] = orjson.loads(prior) + _input_items(doc.get("input"))
        doc.pop("previous_response_id", None)
        raw = orjson.dumps(doc)
    # Required: the relayed stream is the answer; the backend runs its own hosted tools.
    own = NativeRequest("responses", raw, chat.model, required="a Responses pass-through")
    svc = request.app[SERVICES]
    if stream:
        return await edge.stream(request, call, gateway.chat_events(svc, call, plan, chat, own), face.NativeWriter())
    return edge.reply(call, await gateway.chat(svc, call, plan, chat, own))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/responses", create)
        app.router.add_get(prefix + "/responses/{response_id}", retrieve)
        app.router.add_delete(prefix + "/responses/{response_id}", delete)

