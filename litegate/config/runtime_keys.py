"""Keys made and revoked at runtime (the dashboard's Keys page, POST /admin/keys): where they live and how
they join the config's own keys.

Decision: they live in one small JSON file beside the usage database (`keys.json` in the data dir, or
`auth.keys_file`), mode 600, never in the config file (litegate does not rewrite a file its owner edits
by hand) and never in SQLite (a reload reads config files, not the usage store). The file holds salted
hashes only, like `key_hash` in the config, and a list of config keys revoked from the UI. Every
snapshot the ConfigHolder makes (start, SIGHUP, file watch, POST /admin/reload) is the config file's
keys plus this file's, so a key made in the UI survives a restart and a reload. A name the config
file also uses is the config's; the file's entry is ignored.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_FIELDS = ("name", "key_hash", "models", "admin", "rpm", "tpm", "max_concurrent", "revoked", "created_at")


class KeysFileError(Exception):
    """The runtime keys file cannot be read or written; the message names the file."""


def data_dir(cfg: Any) -> Path:
    """Where litegate keeps its own files: usage.path's directory, else LITEGATE_DATA_DIR, else the
    platform's data dir (what the usage store uses too)."""
    if cfg.usage.path:
        p = Path(cfg.usage.path).expanduser()
        return p.parent if p.suffix in (".db", ".sqlite", ".sqlite3") else p
    return Path(os.environ.get("LITEGATE_DATA_DIR") or platformdirs.user_data_dir("litegate"))


def path_for(cfg: Any) -> Path:
    return Path(cfg.auth.keys_file).expanduser() if cfg.auth.keys_file else data_dir(cfg) / "keys.json"


def read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"keys": [], "revoked": []}
    except (OSError, ValueError) as e:
        raise KeysFileError(f"runtime keys file {path}: {e}") from None
    if not isinstance(doc, dict):
        raise KeysFileError(f"runtime keys file {path}: not a JSON object")
    return {"keys": [k for k in doc.get("keys", []) if isinstance(k, dict) and NAME.match(str(k.get("name", "")))
                     and str(k.get("key_hash", "")).startswith("sha256:")],
            "revoked": [str(n) for n in doc.get("revoked", [])]}


def write(path: Path, doc: dict[str, Any]) -> None:
    """Atomically (a temporary file renamed over it), readable by the owner only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as e:
        raise KeysFileError(f"cannot write the runtime keys file {path}: {e.strerror or e}") from None


def merge(cfg: Any, doc: dict[str, Any]) -> Any:
    """The config with the file's keys added and the file's revocations applied (a new frozen snapshot)."""
    from litegate.config import Key  # the Struct lives beside Config

    if not doc["keys"] and not doc["revoked"]:
        return cfg
    revoked = set(doc["revoked"])
    own = [msgspec.structs.replace(k, revoked=True) if k.name in revoked else k for k in cfg.auth.keys]
    names = {k.name for k in own}
    for entry in doc["keys"]:
        if entry["name"] in names:
            continue
        names.add(entry["name"])
        fields = {f: entry[f] for f in _FIELDS if f in entry}
        fields["models"] = tuple(fields.get("models") or ("*",))
        own.append(Key(**fields, source="runtime"))
    return msgspec.structs.replace(cfg, auth=msgspec.structs.replace(cfg.auth, keys=tuple(own)))


def add(path: Path, *, name: str, key_hash: str, models: list[str], admin: bool, rpm: int | None) -> dict:
    doc = read(path)
    entry = {"name": name, "key_hash": key_hash, "models": models or ["*"], "admin": admin,
             "created_at": round(time.time(), 3)}
    if rpm:
        entry["rpm"] = rpm
    doc["keys"].append(entry)
    doc["revoked"] = [n for n in doc["revoked"] if n != name]
    write(path, doc)
    return entry


def revoke(path: Path, name: str, *, runtime: bool) -> None:
    """A runtime key is marked revoked in place; a config key's name goes on the file's revoked list."""
    doc = read(path)
    if runtime:
        for entry in doc["keys"]:
            if entry["name"] == name:
                entry["revoked"] = True
    elif name not in doc["revoked"]:
        doc["revoked"].append(name)
    write(path, doc)
