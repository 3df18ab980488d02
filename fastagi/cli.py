"""`ictcontact` console script: one explicit table of subcommands.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fastagi.settings import SettingsError

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "db": ("fastagi.commands.db", "create or upgrade the database schema, show its version"),
    "serve": ("fastagi.commands.serve", "run the FastAGI server"),
    "simulate": ("fastagi.commands.simulate", "play Asterisk's side of a FastAGI session"),
    "dialplan": ("fastagi.commands.dialplan", "generate the per-client dialplan contexts"),
    "asterisk": ("fastagi.commands.asterisk", "create and check Asterisk's own database login"),
    "contacts": ("fastagi.commands.contacts", "import a campaign's contacts from CSV"),
    "dialer": ("fastagi.commands.dialer", "dial the running campaigns over AMI"),
    "users": ("fastagi.commands.users", "give client users database logins, revoke, list, sync"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ictcontact",
        description="Multi-tenant call control and billing for Asterisk over FastAGI.")
    parser.add_argument("--config", help="config file (INI, section [ictcontact])")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # one broken command must not take the others down
            command_parser.set_defaults(run=_unavailable(name, exc))
            continue
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def _unavailable(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        print(f"ictcontact {name}: cannot load this command: {exc}", file=sys.stderr)
        return 1
    return run


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=(args.log_level or "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except SettingsError as exc:
        print(f"ictcontact: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
