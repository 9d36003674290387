#!/usr/bin/env python3
"""Render launchd/litegate.plist.in into a launchd job plist (`make install` runs this; stdlib only).

The template is itself a valid plist. Every string that is exactly `@NAME@` is replaced by that
value, typed (int for limits and intervals); a key whose value is None is dropped (UserName for a
per-user agent). Paths are made absolute, since launchd resolves nothing. The env file is named,
never read: secrets stay in it and out of the plist.

    python3 launchd/render.py --output ~/Library/LaunchAgents/local.litegate.plist \\
        --program .venv/bin/litegate --config ~/.config/litegate/litegate.json \\
        --env-file ~/.config/litegate/env --log-dir ~/Library/Logs/litegate
"""

from __future__ import annotations

import argparse
import json
import math
import os
import plistlib
import re
import sys
import tempfile
from xml.parsers.expat import ExpatError
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "litegate.plist.in"
DEFAULT_GRACE_S = 30  # server.shutdown_grace_s when the config leaves it out
EXIT_MARGIN_S = 10  # launchd's SIGKILL comes this long after the grace, never during the drain
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class RenderError(Exception):
    pass


def fill(node: Any, values: dict[str, Any]) -> Any:
    """Replace `@NAME@` strings in a loaded plist tree; drop dict keys whose value is None."""
    if isinstance(node, dict):
        out = {k: fill(v, values) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if isinstance(node, str):
        m = _PLACEHOLDER.fullmatch(node)
        if m:
            if m.group(1) not in values:
                raise RenderError(f"template placeholder {node} has no value")
            return values[m.group(1)]
        if _PLACEHOLDER.search(node):
            raise RenderError(f"template string {node!r} mixes text and a placeholder")
    return node


def absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def exit_timeout(config_path: str) -> int:
    """Seconds launchd waits after SIGTERM before SIGKILL: the config's drain grace plus a margin."""
    try:
        doc = json.loads(Path(config_path).read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise RenderError(f"cannot read config {config_path}: {e}") from None
    server = doc.get("server") if isinstance(doc, dict) else None
    grace = server.get("shutdown_grace_s", DEFAULT_GRACE_S) if isinstance(server, dict) else DEFAULT_GRACE_S
    if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0:
        grace = DEFAULT_GRACE_S
    return math.ceil(grace) + EXIT_MARGIN_S


def values_from(args: argparse.Namespace) -> dict[str, Any]:
    if not _LABEL.fullmatch(args.label):
        raise RenderError(f"label {args.label!r}: use reverse-DNS letters, digits, '.', '-', '_'")
    program, config, log_dir = absolute(args.program), absolute(args.config), absolute(args.log_dir)
    if not os.access(program, os.X_OK):
        raise RenderError(f"program {program} is not an executable file (build the venv: make run)")
    if not os.path.isfile(config):
        raise RenderError(f"config {config} is not a file (pass CONFIG=path)")
    return {
        "LABEL": args.label,
        "PROGRAM": program,
        "CONFIG": config,
        "ENV_FILE": absolute(args.env_file),
        "WORKDIR": absolute(args.workdir),
        "USER_NAME": args.user or None,
        "STDOUT": os.path.join(log_dir, "litegate.log"),
        "STDERR": os.path.join(log_dir, "litegate.err.log"),
        "THROTTLE_S": args.throttle_s,
        "EXIT_TIMEOUT_S": exit_timeout(config),
        "NOFILE": args.nofile,
    }


def render(values: dict[str, Any], template: Path = TEMPLATE) -> dict[str, Any]:
    with open(template, "rb") as f:
        return fill(plistlib.load(f), values)


def write(plist: dict[str, Any], output: str) -> None:
    """Atomically, mode 644 (launchd ignores a job file that others can write)."""
    out = Path(absolute(output))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            plistlib.dump(plist, f, fmt=plistlib.FMT_XML, sort_keys=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="render the litegate launchd plist")
    p.add_argument("--output", required=True, help="plist to write (e.g. ~/Library/LaunchAgents/LABEL.plist)")
    p.add_argument("--template", type=Path, default=TEMPLATE)
    p.add_argument("--label", default="local.litegate")
    p.add_argument("--program", required=True, help="the venv's litegate executable")
    p.add_argument("--config", required=True, help="the JSON config the service serves")
    p.add_argument("--env-file", required=True, help="KEY=VALUE secrets file (named here, never read)")
    p.add_argument("--workdir", default=os.getcwd())
    p.add_argument("--log-dir", required=True, help="where litegate.log and litegate.err.log go")
    p.add_argument("--user", help="UserName to run as (LaunchDaemon only)")
    p.add_argument("--throttle-s", type=int, default=30, help="ThrottleInterval: minimum seconds between starts")
    p.add_argument("--nofile", type=int, default=8192, help="NumberOfFiles soft and hard limit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        plist = render(values_from(args), args.template)
        write(plist, args.output)
    except (RenderError, OSError, plistlib.InvalidFileException, ExpatError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    print(f"wrote {absolute(args.output)} ({plist['Label']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
