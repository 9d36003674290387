"""The provider contract, run against every provider in the PROVIDERS table with recorded payloads.

Each provider owns tests/data/<provider>/contract.json: its recorded backend payloads and the
normalised outcome litegate must make of each (schema: tests/data/contract.schema.json, explained
in tests/data/README.md). Adding a provider means adding data, not tests: a provider without a
manifest, or whose manifest leaves a part of the contract untested, fails this module.

Streams go through the real framing (upstream.sse_frames / ndjson_frames, fed in small chunks),
the provider's parse_chat_stream, and then both shared consumers: ChunkWriter (the client's SSE,
checked chunk by chunk against the OpenAI spec and the streaming rules of openai-chat.md §5) and
Aggregator (a non-streaming client). The request side runs every provider's build_chat over the
OpenAI requests in tests/data/requests/. Pure functions only: no network, no servers.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator
from msgspec import UNSET
from multidict import CIMultiDict

from litegate import upstream
from litegate.core.events import Aggregator
from litegate.surfaces.openai import ChunkWriter
from litegate.config import Deployment
from litegate.errors import BadRequest, GatewayError
from litegate.providers import PROVIDERS, Provider, UpstreamRequest, Vectors
from litegate.wire import ChatCompletion, Finish, TextDelta, Usage, chat_request_decoder, encoder
from tests.conftest import sse_events

DATA = Path(__file__).resolve().parent / "data"
REQUESTS = DATA / "requests"
MANIFEST = "contract.json"
SCHEMA = json.loads((DATA / "contract.schema.json").read_text())

MODEL = "contract-model"  # the client-facing name the gateway writes into its output
BACKEND_MODEL = "backend-model-x1"
CLIENT_ALIAS = "contract-alias"  # the `model` of tests/data/requests/*.json
SECRET = "sk-contract-5EcR3T-only-in-headers"
API_BASE = "http://backend.contract.test:8080/prefix"
FRAMING_SUFFIX = {"sse": ".sse", "ndjson": ".ndjson"}
BODY_SUFFIX = ".json"
REQUIRED_KINDS = ("chat", "stream", "stream_error", "error")
CHUNK_SIZE = 13  # bytes per network read: frames and UTF-8 characters get split across reads
TOOL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def target(name: str) -> Deployment:
    return Deployment(name=MODEL, provider=name, model=BACKEND_MODEL, id=f"{name}/contract",
                      api_base=API_BASE, api_key=SECRET)


def manifest_path(name: str) -> Path:
    return DATA / name / MANIFEST


def load_manifest(name: str) -> dict[str, Any] | None:
    path = manifest_path(name)
    return json.loads(path.read_text()) if path.is_file() else None


def require_manifest(name: str) -> dict[str, Any]:
    manifest = load_manifest(name)
    if manifest is None:
        pytest.fail(f"provider {name!r} has no {manifest_path(name).relative_to(DATA.parent.parent)}")
    return manifest


def cases(kind: str) -> list[Any]:
    """(provider name, case) for every manifest case of `kind`, across the PROVIDERS table."""
    out = []
    for name in PROVIDERS:
        for case in (load_manifest(name) or {}).get("cases", ()):
            if isinstance(case, dict) and case.get("kind") == kind:
                out.append(pytest.param(name, case, id=f"{name}:{case.get('file')}"))
    return out


@pytest.fixture(params=["contract", "openai-spec"])
def spec(request) -> Any:
    """Each check runs twice: on its own ("contract", always), and with every reply and chunk also
    validated against the official OpenAI spec ("openai-spec"), which is skipped visibly, with the
    reason, where ../shared is absent (in CI it is present, so there it runs)."""
    if request.param == "contract":
        return None
    return request.getfixturevalue("openai_schema")


def test_openai_spec_checks_are_live(openai_schema):
    """The OpenAI spec is loaded and rejects a malformed chunk, so the schema checks below can fail
    (this test is skipped, with the reason, when the spec is absent: the only sign they are off)."""
    with pytest.raises(AssertionError):
        openai_schema("CreateChatCompletionStreamResponse", {"id": "x", "object": "chat.completion.chunk"})


# ---------------------------------------------------------------- feeding recorded bytes
class _Response:
    """What upstream's framers read from a pool.Response: `chunks()`, the body as it arrives."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._raw), CHUNK_SIZE):
            yield self._raw[start:start + CHUNK_SIZE]


def frames(provider: Provider, path: Path) -> AsyncIterator[bytes]:
    framer = upstream.ndjson_frames if provider.framing == "ndjson" else upstream.sse_frames
    return framer(_Response(path.read_bytes()), "contract")  # type: ignore[arg-type]


async def stream_events(name: str, case: dict[str, Any]) -> list[Any]:
    provider = PROVIDERS[name]
    return [ev async for ev in provider.parse_chat_stream(frames(provider, DATA / name / case["file"]), target(name))]


# ---------------------------------------------------------------- normalised outcomes
def json_object(arguments: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        pytest.fail(f"{where}: arguments {arguments!r} are not JSON")
    assert isinstance(value, dict), f"{where}: arguments {arguments!r} are not a JSON object"
    return value


def usage_view(usage: dict[str, Any]) -> dict[str, int]:
    return {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)}


def outcome_of(completion: ChatCompletion) -> tuple[dict[str, Any], dict[str, Any]]:
    """(normalised choice 0, memo) of a ChatCompletion."""
    choice = completion.choices[0]
    msg = choice.message
    calls = [] if msg.tool_calls is UNSET else msg.tool_calls
    usage = Usage() if completion.usage is UNSET else completion.usage
    return {
        "content": msg.content,
        "finish_reason": choice.finish_reason,
        "tool_calls": [{"id": c.id, "name": c.function.name,
                        "arguments": json_object(c.function.arguments, f"tool_calls[{k}]")}
                       for k, c in enumerate(calls)],
        "reasoning": None if msg.reasoning_content is UNSET else msg.reasoning_content,
        "usage": usage_view(msgspec.to_builtins(usage)),
    }, ({} if completion.memo is UNSET else completion.memo)


def assert_outcome(actual: dict[str, Any], expect: dict[str, Any], memo: dict[str, Any] | None, label: str) -> None:
    """`actual` matches the manifest's `expect`; `memo` None means memo is not observable here."""
    ids = [c["id"] for c in actual["tool_calls"]]
    assert all(isinstance(i, str) and TOOL_ID.fullmatch(i) for i in ids), f"{label}: bad tool-call ids {ids}"
    assert len(set(ids)) == len(ids), f"{label}: tool-call ids are not unique: {ids}"
    calls = []
    for got, want in zip(actual["tool_calls"], expect["tool_calls"]):
        call = {"name": got["name"], "arguments": got["arguments"]}
        if "id" in want:
            call["id"] = got["id"]
        if "memo" in want and memo is not None:
            call["memo"] = memo.get(got["id"])
        calls.append(call)
    calls += [{"name": c["name"], "arguments": c["arguments"]} for c in actual["tool_calls"][len(calls):]]
    wanted_calls = [{k: v for k, v in c.items() if k != "memo" or memo is not None} for c in expect["tool_calls"]]
    u = expect["usage"]
    wanted_usage = {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
                    "total_tokens": u.get("total_tokens", u["prompt_tokens"] + u["completion_tokens"]),
                    "cached_tokens": u["cached_tokens"], "reasoning_tokens": u.get("reasoning_tokens", 0)}
    got = {**actual, "tool_calls": calls}
    want = {"content": expect["content"], "finish_reason": expect["finish_reason"], "tool_calls": wanted_calls,
            "reasoning": expect["reasoning"], "usage": wanted_usage}
    assert got == want, label


def as_client(completion: ChatCompletion) -> dict[str, Any]:
    """The completion as the gateway sends it: its own id, time and model name, memo removed."""
    final = msgspec.structs.replace(completion, id="chatcmpl-contract", created=1767225600, model=MODEL, memo=UNSET)
    return json.loads(encoder.encode(final))


# ---------------------------------------------------------------- the client's SSE stream
def client_stream(events: list[Any]) -> list[bytes]:
    writer = ChunkWriter(MODEL, include_usage=True)
    out: list[bytes] = []
    for ev in events:
        out += writer.feed(ev)
    return out + writer.finish()


def check_envelope(items: list[bytes], spec: Any) -> list[dict[str, Any]]:
    """Every item is one `data:` event; [DONE] once and last; chunks valid, sharing id/created/model."""
    assert all(i.startswith(b"data: ") and i.endswith(b"\n\n") and i.count(b"\n\n") == 1 for i in items)
    events, comments = sse_events(b"".join(items))
    assert not comments and events[-1] == "[DONE]" and events.count("[DONE]") == 1, events[-3:]
    chunks = events[:-1]
    for chunk in chunks:
        if spec is not None:
            spec("CreateChatCompletionStreamResponse", chunk)
        assert (chunk["object"], chunk["model"]) == ("chat.completion.chunk", MODEL)
        assert "usage" in chunk, "with include_usage every chunk carries usage (null until the last)"
        assert [c["index"] for c in chunk["choices"]] in ([], [0])
    assert len({(c["id"], c["created"]) for c in chunks}) == 1, "chunks must share id and created"
    return chunks


def check_shape(chunks: list[dict[str, Any]]) -> None:
    """One role delta (first), one finish chunk (empty delta), one usage chunk (choices []), in that order."""
    roles = [k for k, c in enumerate(chunks) if any("role" in ch["delta"] for ch in c["choices"])]
    finishes = [k for k, c in enumerate(chunks) if any(ch["finish_reason"] is not None for ch in c["choices"])]
    usages = [k for k, c in enumerate(chunks) if c["usage"] is not None]
    assert roles == [0] and chunks[0]["choices"][0]["delta"]["role"] == "assistant", roles
    assert finishes == [len(chunks) - 2], finishes
    assert chunks[-2]["choices"][0]["delta"] == {}, "the finish chunk carries an empty delta"
    assert usages == [len(chunks) - 1] and chunks[-1]["choices"] == [], usages
    for c in chunks[1:-2]:
        delta = c["choices"][0]["delta"]
        assert delta, "no empty deltas before the finish chunk"
        assert delta.get("content", "x") != "", "no empty content chunks after the role chunk"


def check_tool_fragments(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per index: id, type and name on the first fragment only; indices 0..n-1; ids unique."""
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        for ch in c["choices"]:
            for frag in ch["delta"].get("tool_calls", ()):
                fn = frag.get("function", {})
                if frag["index"] not in calls:
                    assert frag.get("id") and frag.get("type") == "function" and fn.get("name"), frag
                    calls[frag["index"]] = {"id": frag["id"], "name": fn["name"], "args": []}
                else:
                    assert "id" not in frag and not fn.get("name"), f"id/name repeated on a later fragment: {frag}"
                calls[frag["index"]]["args"].append(fn.get("arguments", ""))
    assert sorted(calls) == list(range(len(calls))), f"tool-call indices {sorted(calls)}"
    ids = [c["id"] for c in calls.values()]
    assert len(set(ids)) == len(ids), f"tool-call ids repeat: {ids}"
    return calls


def read_client_stream(items: list[bytes], spec: Any) -> dict[str, Any]:
    """Check the SSE the client gets, and return what a client would assemble from it."""
    chunks = check_envelope(items, spec)
    check_shape(chunks)
    calls = check_tool_fragments(chunks)
    deltas = [ch["delta"] for c in chunks for ch in c["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    return {
        "content": text or (None if calls else ""),
        "finish_reason": chunks[-2]["choices"][0]["finish_reason"],
        "tool_calls": [{"id": c["id"], "name": c["name"],
                        "arguments": json_object("".join(c["args"]), f"stream tool_calls[{k}]")}
                       for k, c in sorted(calls.items())],
        "reasoning": reasoning or None,
        "usage": usage_view(chunks[-1]["usage"]),
    }


# ---------------------------------------------------------------- manifests
@pytest.mark.parametrize("name", PROVIDERS)
def test_every_provider_has_a_manifest(name):
    """Every provider in the PROVIDERS table has tests/data/<name>/contract.json: none slips in untested."""
    assert manifest_path(name).is_file(), (
        f"provider {name!r} has no recorded payloads: add tests/data/{name}/{MANIFEST} (see tests/data/README.md)")


def test_manifests_name_only_providers_in_the_table():
    """A manifest for a provider that is not in PROVIDERS (renamed, removed) is an error, not dead data."""
    stray = sorted(d.name for d in DATA.iterdir() if (d / MANIFEST).is_file() and d.name not in PROVIDERS)
    assert not stray, f"manifests without a provider in PROVIDERS: {stray}"


@pytest.mark.parametrize("name", PROVIDERS)
def test_manifest_follows_the_schema_and_lists_every_recorded_file(name):
    """The manifest is valid against contract.schema.json, names existing files with the suffix of
    their kind (streams in the provider's framing), once each, and leaves no recorded file unlisted."""
    manifest = require_manifest(name)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(SCHEMA).iter_errors(manifest)]
    assert not errors, errors
    provider = PROVIDERS[name]
    files = [c["file"] for c in manifest["cases"]]
    assert len(set(files)) == len(files), f"a file is listed twice: {sorted(f for f in files if files.count(f) > 1)}"
    for case in manifest["cases"]:
        stream = case["kind"] in ("stream", "stream_error")
        suffix = FRAMING_SUFFIX[provider.framing] if stream else BODY_SUFFIX
        assert case["file"].endswith(suffix), f"{case['file']}: a {case['kind']} case of {name} needs {suffix}"
        assert (DATA / name / case["file"]).is_file(), f"{case['file']} does not exist"
    recorded = {p.name for p in (DATA / name).iterdir() if p.is_file() and p.name != MANIFEST}
    assert not recorded - set(files), f"recorded but not in the manifest: {sorted(recorded - set(files))}"


@pytest.mark.parametrize("name", PROVIDERS)
def test_manifest_covers_the_whole_provider_contract(name):
    """A manifest has chat, stream, stream_error and error cases, tool calls in both a chat and a stream
    case, and embeddings cases exactly when the provider parses embeddings."""
    manifest = require_manifest(name)
    kinds = Counter(c.get("kind") for c in manifest.get("cases", ()))
    assert not [k for k in REQUIRED_KINDS if not kinds[k]], f"no case of kind {[k for k in REQUIRED_KINDS if not kinds[k]]}"
    for kind in ("chat", "stream"):
        assert any(c.get("kind") == kind and c["expect"]["tool_calls"] for c in manifest["cases"]), \
            f"no {kind} case with tool calls"
    has_parser = PROVIDERS[name].parse_embeddings is not None
    assert bool(kinds["embeddings"]) == has_parser, (
        "the provider parses embeddings but no case records them" if has_parser
        else "embeddings cases for a provider without parse_embeddings")


# ---------------------------------------------------------------- replies
@pytest.mark.parametrize("name, case", cases("chat"))
def test_chat_reply_normalises_to_the_expected_completion(name, case, spec):
    """parse_chat turns the recorded reply into the expected content, finish_reason, tool calls (ids,
    arguments, memo), reasoning and usage; the gateway's version of it is a valid OpenAI completion."""
    completion = PROVIDERS[name].parse_chat((DATA / name / case["file"]).read_bytes(), target(name))
    assert isinstance(completion, ChatCompletion) and len(completion.choices) >= 1
    actual, memo = outcome_of(completion)
    assert_outcome(actual, case["expect"], memo, f"{name}:{case['file']}")
    if spec is not None:
        spec("CreateChatCompletionResponse", as_client(completion))


@pytest.mark.parametrize("name, case", cases("stream"))
async def test_stream_gives_one_well_formed_client_stream_and_the_expected_answer(name, case, spec):
    """The recorded stream, framed and parsed, makes a client SSE stream that follows the OpenAI rules
    (valid chunks, one role delta first, tool calls with id + name on their first fragment and JSON
    object arguments, one finish chunk, one usage chunk, [DONE] last) and assembles to the expected
    answer; the Aggregator makes the same answer (with memo) as a valid non-streaming completion."""
    events = await stream_events(name, case)
    assert sum(isinstance(ev, Finish) for ev in events) >= 1, "a complete stream yields Finish"
    label = f"{name}:{case['file']}"
    assert_outcome(read_client_stream(client_stream(events), spec), case["expect"], None, f"{label} (SSE)")
    aggregator = Aggregator()
    for ev in events:
        aggregator.feed(ev)
    completion = aggregator.result(MODEL)
    actual, memo = outcome_of(completion)
    assert_outcome(actual, case["expect"], memo, f"{label} (aggregated)")
    if spec is not None:
        spec("CreateChatCompletionResponse", as_client(completion))


@pytest.mark.parametrize("name, case", cases("stream_error"))
async def test_failed_stream_raises_a_gateway_error_after_its_partial_text(name, case):
    """A stream that errors or ends early raises a GatewayError (never another exception, never a
    silent end), without a Finish first, after yielding the text that came before the failure."""
    provider, seen = PROVIDERS[name], []
    with pytest.raises(GatewayError) as info:
        async for ev in provider.parse_chat_stream(frames(provider, DATA / name / case["file"]), target(name)):
            seen.append(ev)
    err, expect = info.value, case.get("expect", {})
    assert not any(isinstance(ev, Finish) for ev in seen), "a failed stream must not look finished"
    got = {"content_before": "".join(ev.text for ev in seen if isinstance(ev, TextDelta)),
           "http_status": err.status, "type": err.type, "code": err.code, "retryable": err.retryable}
    assert {k: got[k] for k in expect if k in got} == {k: v for k, v in expect.items() if k in got}
    assert expect.get("message_contains", "") in err.message


@pytest.mark.parametrize("name, case", cases("error"))
def test_error_body_maps_to_the_expected_gateway_error(name, case, spec):
    """parse_error(status, body, headers) gives the expected client status, OpenAI type/code, retryable
    flag and retry-after, keeps the backend's message, and encodes as a valid OpenAI error envelope."""
    body = (DATA / name / case["file"]).read_bytes()
    err = PROVIDERS[name].parse_error(case["status"], body, CIMultiDict(case.get("headers", {})))
    assert isinstance(err, GatewayError)
    expect = case["expect"]
    got = {"http_status": err.status, "type": err.type, "retryable": err.retryable}
    want = {k: expect[k] for k in got}
    if "code" in expect:
        got["code"], want["code"] = err.code, expect["code"]
    assert got == want
    if expect["retry_after"] is None:
        assert err.retry_after is None
    else:
        assert err.retry_after == pytest.approx(expect["retry_after"])
        assert err.headers() == {"retry-after": str(math.ceil(expect["retry_after"]))}
    assert expect.get("message_contains", "") in err.message
    envelope = json.loads(err.to_json())
    assert envelope["error"]["type"] == err.type and envelope["error"]["message"] == err.message
    if spec is not None:
        spec("ErrorResponse", envelope)


@pytest.mark.parametrize("name, case", cases("embeddings"))
def test_embeddings_reply_gives_the_vectors_in_input_order(name, case):
    """parse_embeddings returns every vector, in input order, as floats, with the prompt token count."""
    parse = PROVIDERS[name].parse_embeddings
    assert parse is not None, f"{name} has embeddings cases but no parse_embeddings"
    vectors = parse((DATA / name / case["file"]).read_bytes(), target(name))
    assert isinstance(vectors, Vectors)
    expect = case["expect"]
    assert vectors.prompt_tokens == expect["prompt_tokens"]
    assert len(vectors.vectors) == len(expect["vectors"])
    for got, want in zip(vectors.vectors, expect["vectors"]):
        assert all(isinstance(x, float) for x in got)
        assert got == pytest.approx(want, rel=1e-6)


# ---------------------------------------------------------------- requests
REQUEST_FILES = sorted(REQUESTS.glob("*.json"))


def strings(node: Any) -> list[str]:
    """Every string (keys and values) in a decoded JSON document."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (k, *strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def client_texts(doc: dict[str, Any]) -> list[str]:
    """The system/developer/user texts and image data of a request: what must reach the backend."""
    out = []
    for m in doc["messages"]:
        if m["role"] not in ("system", "developer", "user"):
            continue
        parts = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        for p in parts:
            if p["type"] == "text":
                out.append(p["text"])
            elif p["type"] == "image_url":
                url = p["image_url"]["url"] if isinstance(p["image_url"], dict) else p["image_url"]
                out.append(url.partition(",")[2])
    return out


def test_shared_requests_are_valid_openai_requests(spec):
    """tests/data/requests/*.json exist, decode as ChatRequests and are valid OpenAI requests."""
    assert REQUEST_FILES, "no shared requests in tests/data/requests"
    for path in REQUEST_FILES:
        doc = json.loads(path.read_text())
        assert doc["model"] == CLIENT_ALIAS, path.name
        chat_request_decoder.decode(path.read_bytes())
        if spec is not None:
            spec("CreateChatCompletionRequest", doc)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("request_file", REQUEST_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("name", PROVIDERS)
def test_build_chat_makes_a_sendable_request_that_keeps_the_secret_in_headers(name, request_file, stream):
    """build_chat gives an UpstreamRequest with a JSON-object body, a URL under the deployment's
    api_base, the backend model (never the client's alias), every client text and image, and the
    API key nowhere but in the headers."""
    doc = {**json.loads(request_file.read_text()), "stream": stream}
    up = PROVIDERS[name].build_chat(chat_request_decoder.decode(json.dumps(doc)), target(name), {})
    assert isinstance(up, UpstreamRequest) and up.method == "POST"
    assert isinstance(up.body, bytes)
    body = json.loads(up.body)
    assert isinstance(body, dict)
    assert up.url.startswith(API_BASE + "/"), up.url
    assert SECRET not in up.url and SECRET.encode() not in up.body, "the API key leaked out of the headers"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in up.headers.items())
    sent = strings(body) + [up.url]
    assert any(BACKEND_MODEL in s for s in sent) and not any(CLIENT_ALIAS in s for s in sent)
    lost = [t for t in client_texts(doc) if not any(t in s for s in sent)]
    assert not lost, f"client text or image data missing from the backend request: {lost}"


# Contract checks a provider is known to fail: (test name, provider) -> why. Each entry is a strict
# xfail, so the suite turns red when the gap is fixed and the entry must go. Keep this list short.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def with_gaps(check: str) -> list[Any]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[(check, name)]))
            if (check, name) in KNOWN_GAPS else name for name in PROVIDERS]


@pytest.mark.parametrize("name", with_gaps("unknown_tool_call_id"))
def test_tool_message_with_an_unknown_tool_call_id_is_a_400_naming_the_field(name):
    """A tool message answering no earlier assistant tool call is the client's 400, naming
    messages[i].tool_call_id, before anything is sent to the backend."""
    doc = json.loads((REQUESTS / "tools_round_trip.json").read_text())
    i = max(k for k, m in enumerate(doc["messages"]) if m["role"] == "tool")
    doc["messages"][i]["tool_call_id"] = "call_NoSuchCallAnywhere0000"
    with pytest.raises(BadRequest) as info:
        PROVIDERS[name].build_chat(chat_request_decoder.decode(json.dumps(doc)), target(name), {})
    where = f"messages[{i}].tool_call_id"
    assert info.value.param == where and where in info.value.message, (info.value.param, info.value.message)
