"""Command line: `litegate serve | check-config | route | keys new | usage | version` (argparse only)."""

from __future__ import annotations

import argparse
import sys

from litegate import __version__

ENV_FILE_HELP = ("read KEY=VALUE lines into the environment before loading the config (where the secrets "
                 "that api_key_env / key_env name live; must be chmod 600; re-read on reload)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="litegate", description="OpenAI-compatible gateway for your own AI server")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", required=True, help="path to the JSON config file")
    s.add_argument("--host", help="override server.host")
    s.add_argument("--port", type=int, help="override server.port")
    s.add_argument("--env-file", metavar="PATH", help=ENV_FILE_HELP)
    s.add_argument("--pidfile", metavar="PATH", help="write the process id here while running (make run; make "
                   "reload sends SIGHUP to it)")
    c = sub.add_parser("check-config", help="validate a config file and print a summary")
    c.add_argument("path")
    c.add_argument("--env-file", metavar="PATH", help=ENV_FILE_HELP)
    r = sub.add_parser("route", help="show which model a message would reach, and why (offline)")
    r.add_argument("--config", required=True)
    r.add_argument("--message", required=True, help="the user's message")
    r.add_argument("--model", help="the model the client asks for (default: every virtual model)")
    r.add_argument("--key", help="the caller's key name")
    r.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--image", action="store_true", help="the message carries an image")
    r.add_argument("--tools", action="store_true", help="the request declares tools")
    r.add_argument("--label", help="pretend the classifier answered this label")
    r.add_argument("--env-file", metavar="PATH", help=ENV_FILE_HELP)
    k = sub.add_parser("keys", help="manage keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser("new", help="print a fresh key and the config line for it")
    kn.add_argument("name")
    u = sub.add_parser("usage", help="print usage from the usage database")
    u.add_argument("--since", default="7d", help="e.g. 24h, 7d, 30d (default 7d)")
    u.add_argument("--by", default="model", choices=["key", "model", "deployment", "day", "hour"])
    u.add_argument("--config", help="read usage.path from this config")
    u.add_argument("--db", help="the usage database (file or directory) to read")
    u.add_argument("--env-file", metavar="PATH", help=ENV_FILE_HELP)
    sub.add_parser("version", help="print the version")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"litegate {__version__}")
        return 0
    from litegate.service import commands

    if args.command == "check-config":
        return commands.check_config(args.path, args.env_file)
    if args.command == "route":
        return commands.route(args.config, args.message, args.model, key=args.key, headers=args.header,
                              image=args.image, tools=args.tools, label=args.label, env_file=args.env_file)
    if args.command == "keys":
        return commands.keys_new(args.name)
    if args.command == "usage":
        return commands.usage(args.config, args.db, args.since, args.by, args.env_file)
    from litegate.service.daemon import serve

    return serve(args.config, args.host, args.port, env_file=args.env_file, pidfile=args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
