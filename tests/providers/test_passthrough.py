"""The pass-through rows (Provider.passthrough): what each provider changes in a face's own request,
and what its relay hands the face (ready frames, then the usage)."""

from __future__ import annotations

import json

import orjson
import pytest

from litegate.config import Deployment
from litegate.errors import GatewayError
from litegate.providers import PROVIDERS, NativeRequest
from litegate.surfaces import SURFACES
from litegate.wire import Usage, UsageEvent

OLLAMA = Deployment(name="llama", provider="ollama", model="llama3.1:8b", id="ollama/llama",
                    options={"num_ctx": 16384, "num_gpu": 1}, keep_alive="30m")
NATIVE_OPENAI = Deployment(name="native", provider="openai", model="gpt-native", id="openai/native", responses_api=True)


async def frames(*lines: bytes):
    for line in lines:
        yield line


async def relayed(face: str, d: Deployment, native: NativeRequest, *lines: bytes) -> list:
    return [x async for x in PROVIDERS[d.provider].passthrough[face].relay(frames(*lines), d, native)]


def test_every_row_is_keyed_by_a_face():
    """A row's key is a face's name, or `<face>.<call>` for that face's other calls: nothing else reaches it."""
    keys = [k for p in PROVIDERS.values() for k in p.passthrough]
    assert keys and all(k.split(".")[0] in SURFACES for k in keys)


def test_ollama_body_renames_model_and_fills_deployment_defaults():
    """Pass-through keeps every client field (raw, template, options, keep_alive) and only renames the
    model; the deployment's options and keep_alive fill gaps, the client's values win."""
    build = PROVIDERS["ollama"].passthrough["ollama"].build
    client = {"model": "llama:latest", "prompt": "x", "raw": True, "template": "{{ .Prompt }}",
              "options": {"num_ctx": 4096, "mirostat": 2}, "context": [1, 2]}
    ureq = build(NativeRequest("ollama", json.dumps(client).encode(), "llama:latest", "/api/generate"), OLLAMA)
    assert ureq.url == "http://127.0.0.1:11434/api/generate"
    assert orjson.loads(ureq.body) == {**client, "model": "llama3.1:8b", "keep_alive": "30m",
                                       "options": {"num_ctx": 4096, "mirostat": 2, "num_gpu": 1}}
    kept = build(NativeRequest("ollama", b'{"model":"m","keep_alive":0}', "m", "/api/chat"), OLLAMA)
    assert orjson.loads(kept.body) == {"model": "llama3.1:8b", "keep_alive": 0, "options": OLLAMA.options}


async def test_ollama_relay_renames_lines_and_reads_the_done_counts():
    """Lines go out as they came but for the client's model name; the done line's counts follow it."""
    native = NativeRequest("ollama", b"", "llama:latest", "/api/chat")
    got = await relayed("ollama", OLLAMA, native,
                        b'{"model":"llama3.1:8b","message":{"content":"Hi"},"done":false}',
                        b'{"model":"llama3.1:8b","done":true,"prompt_eval_count":3,"eval_count":1}')
    assert got == [b'{"model":"llama:latest","message":{"content":"Hi"},"done":false}\n',
                   b'{"model":"llama:latest","done":true,"prompt_eval_count":3,"eval_count":1}\n',
                   UsageEvent(Usage.of(3, 1))]
    with pytest.raises(GatewayError, match="out of memory"):
        await relayed("ollama", OLLAMA, native, b'{"error":"out of memory"}')
    with pytest.raises(GatewayError, match="before its done line"):
        await relayed("ollama", OLLAMA, native, b'{"model":"llama3.1:8b","done":false}')


async def test_responses_relay_rebuilds_event_lines_and_reads_the_terminal_usage():
    """Each data payload gets its `event:` line back; the terminal event's usage follows it; [DONE] is dropped."""
    row = PROVIDERS["openai"].passthrough["responses"]
    assert row.serves(NATIVE_OPENAI) and not row.serves(Deployment(name="o", provider="openai", model="m", id="o"))
    done = b'{"type":"response.completed","response":{"usage":{"input_tokens":7,"output_tokens":2,"total_tokens":9}}}'
    got = await relayed("responses", NATIVE_OPENAI, NativeRequest("responses", b""),
                        b'{"type":"response.output_text.delta","delta":"Hi"}', done, b"[DONE]")
    assert got == [b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
                   b"event: response.completed\ndata: " + done + b"\n\n", UsageEvent(Usage(7, 2, 9))]
