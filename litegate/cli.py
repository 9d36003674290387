"""Command line: `litegate serve | check-config | version` (argparse only)."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="litegate", description="OpenAI-compatible gateway for your own AI server")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", required=True, help="path to the JSON config file")
    s.add_argument("--host", help="override server.host")
    s.add_argument("--port", type=int, help="override server.port")
    c = sub.add_parser("check-config", help="validate a config file and print a summary")
    c.add_argument("path")
    sub.add_parser("version", help="print the version")
    return p


def check_config(path: str) -> int:
    from .config import ConfigError, load

    try:
        cfg = load(path)
    except ConfigError as e:
        print(e.describe(), file=sys.stderr)
        return 1
    print(f"{path}: valid")
    print(f"  listen: {cfg.server.host}:{cfg.server.port}")
    for name, deps in cfg.groups().items():
        for d in deps:
            print(f"  model {name}: {d.provider} {d.model} ({d.id})")
    for alias, target in cfg.router.aliases.items():
        print(f"  alias {alias} -> {target}")
    for name, chain in cfg.router.fallbacks.items():
        print(f"  fallbacks {name} -> {', '.join(chain)}")
    print(f"  keys: {len(cfg.auth.keys)}" if cfg.auth.keys else "  keys: none (loopback only)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"litegate {__version__}")
        return 0
    if args.command == "check-config":
        return check_config(args.path)
    from .app import serve

    return serve(args.config, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
