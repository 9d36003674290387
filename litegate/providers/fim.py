"""Fill-in-the-middle prompt formats: recognising a FIM template a client already filled in, and
writing prefix and suffix in the tokens a model was trained on. Pure string work.

Why: Continue (and other editors) do not send OpenAI's `suffix`; they fill a FIM template they pick
from the model's *name* and post it as a plain prompt. For a name like `autocomplete` that guess is
StarCoder's `<fim_prefix>` tokens, which a Qwen or DeepSeek coder reads as junk, and Ollama would
also wrap the prompt in the model's chat template. So a prompt that already carries a template goes
to Ollama with `raw: true`, rewritten into the model's own format when `models[].fim_format` says
which that is.
"""

from __future__ import annotations

from typing import NamedTuple


class Format(NamedTuple):
    prefix: str
    suffix: str
    middle: str
    suffix_first: bool = False  # Codestral: [SUFFIX]...[PREFIX]...


# Name -> tokens. The schema's fim_format enum is checked against these names by a test.
FORMATS: dict[str, Format] = {
    "qwen": Format("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder, CodeGemma
    "starcoder": Format("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder2, stable-code, Granite
    "codellama": Format("<PRE> ", " <SUF>", " <MID>"),
    "deepseek": Format("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    "codestral": Format("[PREFIX]", "[SUFFIX]", "", suffix_first=True),
}


class Filled(NamedTuple):
    prefix: str
    suffix: str
    format: str


def split(prompt: str) -> Filled | None:
    """(prefix, suffix, format name) when the prompt is a filled FIM template of a known format."""
    for name, f in FORMATS.items():
        if f.suffix_first:
            head, sep, rest = prompt.partition("[SUFFIX]")
            if sep and not head.strip() and "[PREFIX]" in rest:
                suffix, _, prefix = rest.partition("[PREFIX]")
                return Filled(prefix, suffix, name)
            continue
        p, s, m = f.prefix.strip(), f.suffix.strip(), f.middle.strip()
        start = prompt.find(p)
        if start < 0 or s not in prompt[start:] or not prompt.rstrip().endswith(m):
            continue
        body = prompt[start + len(p):prompt.rstrip().rfind(m)]
        prefix, _, suffix = body.partition(s)
        # Text before the prefix token (a file path comment, a repo name) belongs to the prefix.
        lead = prompt[:start]
        return Filled(lead + _trim(prefix, f.prefix, f.suffix), _trim(suffix, f.suffix, f.middle), name)
    return None


def _trim(text: str, before: str, after: str) -> str:
    """Undo the single spaces some formats put around their tokens (Code Llama's '<PRE> x <SUF>')."""
    if before.endswith(" ") and text.startswith(" "):
        text = text[1:]
    if after.startswith(" ") and text.endswith(" "):
        text = text[:-1]
    return text


def render(name: str, prefix: str, suffix: str) -> str:
    f = FORMATS[name]
    if f.suffix_first:
        return f"{f.suffix}{suffix}{f.prefix}{prefix}"
    return f"{f.prefix}{prefix}{f.suffix}{suffix}{f.middle}"
