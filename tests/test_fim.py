"""Fill-in-the-middle the way Continue really sends it: no `suffix`, a FIM template filled from the model's
name (StarCoder tokens for a name like `autocomplete`) posted as a plain prompt with the `openai` SDK. litegate
sends a prompt that already carries a template to Ollama raw, rewritten into the model's fim_format."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

from litegate.config import schema
from litegate.providers import fim
from tests.conftest import base, ollama_config
from tests.fakes import ollama as fake

CONTINUE_PROMPT = "<fim_prefix># main.py\ndef add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"


def test_every_format_round_trips_and_the_schema_lists_them():
    """Each known format's filled template is recognised as that format with the same prefix and suffix, and
    the config schema's fim_format names exactly these (plus "raw")."""
    for name in fim.FORMATS:
        assert fim.split(fim.render(name, "def f(x):\n    ", "\n    return y\n")) == \
            ("def f(x):\n    ", "\n    return y\n", name)
    assert fim.split("just some text <fim_middle>") is None
    enum = schema()["$defs"]["deployment"]["properties"]["fim_format"]["enum"]
    assert sorted(enum) == sorted([*fim.FORMATS, "raw"])


def completion_config(ollama, **model):
    doc = ollama_config(ollama)
    doc["models"].append({"name": "autocomplete", "provider": "ollama", "model": "qwen2.5-coder:1.5b-base",
                          "api_base": base(ollama), **model})
    return doc


@pytest.mark.parametrize("model, sent_prompt", [
    ({"fim_format": "qwen"}, "<|fim_prefix|># main.py\ndef add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))\n"
                             "<|fim_middle|>"),
    ({}, CONTINUE_PROMPT),  # no format set: the client's own template, but still raw
])
async def test_continue_style_prompt_goes_raw_in_the_models_format(ollama, gateway, model, sent_prompt):
    """The openai SDK's completions.create with a filled StarCoder template (Continue's default): Ollama gets
    raw=true and the prompt in the model's fim_format (or as sent when none is set), never a `suffix`."""
    client = await gateway(completion_config(ollama, **model))
    sdk = AsyncOpenAI(base_url=base(client.server) + "/v1", api_key="unused")
    reply = await sdk.completions.create(model="autocomplete", prompt=CONTINUE_PROMPT, max_tokens=32,
                                         stop=["<fim_prefix>", "<fim_suffix>", "<fim_middle>"])
    assert reply.choices[0].text
    sent = ollama.app[fake.REQUESTS][-1]
    assert sent["path"] == "/api/generate"
    assert sent["json"]["raw"] is True and sent["json"]["prompt"] == sent_prompt and "suffix" not in sent["json"]
    await sdk.close()


async def test_openai_suffix_is_written_in_the_models_tokens(ollama, gateway):
    """OpenAI-style FIM (prompt + suffix) with a fim_format: one raw prompt in the model's tokens; without one,
    Ollama's own `suffix` (its template does the rest) and no raw."""
    client = await gateway(completion_config(ollama, fim_format="deepseek"))
    resp = await client.post("/v1/completions", json={"model": "autocomplete", "prompt": "def f(", "suffix": ")"})
    assert resp.status == 200
    sent = ollama.app[fake.REQUESTS][-1]["json"]
    assert sent["prompt"] == "<｜fim▁begin｜>def f(<｜fim▁hole｜>)<｜fim▁end｜>" and sent["raw"] is True
    resp = await client.post("/v1/completions", json={"model": "llama", "prompt": "def f(", "suffix": ")"})
    assert json.loads(await resp.read())["choices"][0]["text"] == "fim:def f(|)"
    sent = ollama.app[fake.REQUESTS][-1]["json"]
    assert sent["suffix"] == ")" and "raw" not in sent


def test_readme_continue_config_follows_continues_reference():
    """The README's ~/.continue/config.yaml has what Continue's config.yaml reference requires: name, version,
    schema v1; each model a name, provider and model, roles from Continue's list; and its autocomplete model
    is one the example config gives a fim_format. The example config's `ollama pull` list in the README is
    complete."""
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme[readme.index("**Continue** (`~/.continue/config.yaml`)"):]
    doc = yaml.safe_load(block[block.index("```yaml") + 7:block.index("```", block.index("```yaml") + 7)])
    assert {"name", "version", "schema"} <= set(doc) and doc["schema"] == "v1"
    roles = {"chat", "autocomplete", "embed", "rerank", "edit", "apply", "summarize"}
    for m in doc["models"]:
        assert {"name", "provider", "model"} <= set(m) and set(m["roles"]) <= roles, m
        assert m["apiBase"].endswith("/v1")
    example = json.loads((root / "config" / "litegate.example.json").read_text())
    by_name = {m["name"]: m for m in example["models"]}
    auto = next(m["model"] for m in doc["models"] if "autocomplete" in m["roles"])
    assert by_name[auto]["fim_format"] in fim.FORMATS
    assert all(m["model"] in by_name for m in doc["models"])
    pulls = set(re.findall(r"ollama pull (\S+)", readme[:readme.index("## Configuration")]))
    assert pulls == {m["model"] for m in example["models"] if m["provider"] == "ollama"}
