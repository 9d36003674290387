"""Env files: KEY=VALUE secrets for the variables that api_key_env / key_env name.

launchd passes no shell environment, so the service reads its secrets from a file the user
controls (chmod 600), re-read on every reload. Messages name the file and line, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(Exception):
    """An env file that cannot be used; the message names the file and line, never a value."""


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, `#` comments and a leading `export ` are allowed, one pair of matching
    quotes around the value is removed, nothing is expanded. The file holds secrets, so it must not be
    open to group or others (chmod 600), as ssh insists for private keys."""
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode & 0o777
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise EnvFileError(f"env file {path}: cannot read it: {getattr(e, 'strerror', None) or e}") from None
    if mode & 0o077:
        raise EnvFileError(f"env file {path} is open to other users (mode {mode:o}); run: chmod 600 {path}")
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not _ENV_NAME.fullmatch(key.strip()):
            raise EnvFileError(f"env file {path}, line {n}: expected KEY=VALUE")  # the line may hold a secret
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def environment(path: str | None, base: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The variables secrets are read from: the process environment, with the env file's pairs on top
    (file wins). Nothing is written back to os.environ: a reload sees the file as it is now, and a
    pair removed from the file is gone."""
    base = os.environ if base is None else base
    if not path:
        return base
    return {**base, **read_env_file(path)}
