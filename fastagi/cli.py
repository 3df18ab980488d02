"""`ictcontact` console script: one explicit table of subcommands.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib import metadata
from typing import NoReturn

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
    "rates": ("fastagi.commands.rates", "import rate decks (CSV) into a rate plan or a trunk"),
    "routes": ("fastagi.commands.routes", "the trunks' ASR, ACD, minutes, cost, revenue and margin per day"),
    "users": ("fastagi.commands.users", "give client users database logins, revoke, list, sync"),
    "clients": ("fastagi.commands.clients", "list, show, create, update, suspend, resume clients"),
    "payments": ("fastagi.commands.payments", "record a client's payment, list its payments"),
    "calls": ("fastagi.commands.calls", "export a client's call records (CDR) as CSV"),
    "statement": ("fastagi.commands.statement", "a client's monthly statement: table, CSV, JSON or HTML"),
    "notifier": ("fastagi.commands.notifier", "send low-balance, suspension and reactivation "
                                              "alerts by e-mail and signed webhook"),
}


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line on stderr (not the whole usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ictcontact",
        description="Multi-tenant call control and billing for Asterisk over FastAGI.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_common(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        # also after the subcommand; SUPPRESS keeps a value given before it
        _add_common(command_parser, argparse.SUPPRESS)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # one broken command must not take the others down
            command_parser.set_defaults(run=_unavailable(name, exc))
            continue
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--config", default=default,
                        help="config file (INI, section [ictcontact])")
    parser.add_argument("--log-level", default=default, type=_log_level,
                        help="DEBUG, INFO (default), WARNING, ERROR")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(text: str) -> str:
    if text.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level: use one of "
                                         f"{', '.join(LOG_LEVELS)}")
    return text.upper()


def _version() -> str:
    try:
        return metadata.version("ictcontact-fastagi")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def config_keys(parser: argparse.ArgumentParser) -> frozenset[str]:
    """Every setting a config file may hold: the options of every command (a file is
    shared by all of them)."""
    keys: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command_parser in action.choices.values():
                keys |= config_keys(command_parser)
        elif action.option_strings and action.dest not in ("help", "version", "config"):
            keys.add(action.dest)
    return frozenset(keys)


def _unavailable(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        print(f"ictcontact {name}: cannot load this command: {exc}", file=sys.stderr)
        return 1
    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("config", "log_level"):  # given neither before nor after the subcommand
        if not hasattr(args, name):
            setattr(args, name, None)
    args.config_keys = config_keys(parser)
    logging.basicConfig(level=args.log_level or "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except SettingsError as exc:
        print(f"ictcontact: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C where a command has no handling of its own
        print(f"ictcontact {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
