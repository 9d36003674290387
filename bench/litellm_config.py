"""The configs of the gateways under test, pointing at the same fake backend.

litegate: one model name per route (`bench-openai` on the OpenAI-compatible provider, `bench-ollama`
on Ollama's native API) plus their `-slow`, `-delay` and `-paced` twins, whose backend model name
makes the fake hold a stream, answer late or pace its chunks. LiteLLM's proxy gets the equivalent model_list (openai/ and ollama_chat/ providers), no
master key and no database: plain routing, one uvicorn worker. LiteLLM lives in its own virtualenv
(bench/.venv-litellm, made by `make bench-compare`); it is never a litegate dependency.
"""

from __future__ import annotations

import json
import os
import subprocess

# client-facing name -> (route, backend model): bench-<route>[-<kind>] -> bench[-<kind>] (scenarios.KINDS)
MODELS = {f"bench-{route}{'-' + kind if kind else ''}": (route, f"bench{'-' + kind if kind else ''}")
          for route in ("openai", "ollama") for kind in ("", "slow", "delay", "paced")}


def litegate_config(path: str, port: int, fake_port: int) -> str:
    base = f"http://127.0.0.1:{fake_port}"
    models = [{"name": name, "provider": route, "model": model, "api_base": base + "/v1" if route == "openai" else base}
              for name, (route, model) in MODELS.items()]
    # The load generator is one address opening up to 1,000 connections at once: lift the per-peer cap
    # (server.max_connections_per_peer, 256 by default) that would otherwise refuse most of them.
    doc = {"server": {"host": "127.0.0.1", "port": port, "log_level": "info", "log_format": "json",
                      "max_connections_per_peer": 0},
           "models": models, "router": {"ollama_poll_s": 0}}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


def litellm_config(path: str, fake_port: int) -> str:
    base = f"http://127.0.0.1:{fake_port}"
    lines = ["model_list:"]
    for name, (route, model) in MODELS.items():
        lines += [f"  - model_name: {name}", "    litellm_params:"]
        if route == "openai":
            lines += [f"      model: openai/{model}", f"      api_base: {base}/v1", "      api_key: sk-bench"]
        else:
            lines += [f"      model: ollama_chat/{model}", f"      api_base: {base}"]
    lines += ["litellm_settings:", "  drop_params: true", "  telemetry: false", "general_settings: {}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


# No network here or on a laptop on a plane: use the bundled model cost map instead of fetching it.
# Recent LiteLLM refuses to start without a master key unless told this is local development: like
# litegate on loopback without keys, the comparison runs both gateways without authentication.
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
               "DISABLE_SCHEMA_UPDATE": "true", "PYTHONUNBUFFERED": "1",
               "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"}


def litellm_argv(exe: str, config: str, port: int) -> list[str]:
    return [exe, "--config", config, "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


def litellm_status(exe: str | None, install_log: str | None) -> tuple[bool, str]:
    """(usable, note): whether the LiteLLM proxy executable is there, and which version."""
    if not exe:
        return False, "not requested (run `make bench-compare` for the side-by-side figures)"
    if not os.access(exe, os.X_OK):
        where = f"; see {install_log}" if install_log and os.path.exists(install_log) else ""
        return False, f"LiteLLM is not installed at {exe} (`pip install 'litellm[proxy]'` failed or was not run{where})"
    py = os.path.join(os.path.dirname(exe), "python")
    try:
        out = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True, timeout=60)
        version = out.stdout.strip() or "unknown version"
    except (OSError, subprocess.TimeoutExpired):
        version = "unknown version"
    return True, f"LiteLLM {version}, one uvicorn worker (--num_workers 1), no database, no master key"
