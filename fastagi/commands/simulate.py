"""`ictcontact simulate`: play Asterisk's side of one FastAGI session against a running
server and print what the server did — so a setup can be tried without Asterisk.

Prints every command the server sent (`> ...`), then the channel variables it set
(`NAME=VALUE`, one per line). Exit 0 when the server closed the session itself, 3 when it
did so with ICT_RESULT=REJECT, 1 when it did not within --timeout or could not be reached,
2 for a bad --connect.
"""

from __future__ import annotations

import argparse
import sys

from fastagi import channel_vars as v
from fastagi.settings import source_from_args
from fastagi.testing.fake_asterisk import Faults, SessionResult, run_session

DEFAULT_CONNECT = "127.0.0.1:4573"
EXIT_REJECTED = 3  # the session ended normally, the answer was ICT_RESULT=REJECT


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="script and query, as in agi://host/SCRIPT "
                                       "(e.g. health, authorize?x=1)")
    parser.add_argument("args", nargs="*", metavar="ARG",
                        help="the AGI() arguments after the URL (agi_arg_1 ...)")
    parser.add_argument("--connect", metavar="HOST:PORT",
                        help=f"the server (default {DEFAULT_CONNECT}; env ICTCONTACT_CONNECT)")
    parser.add_argument("--var", type=_pair, action="append", default=[],
                        metavar="NAME=VALUE", help="a channel variable already set (repeat)")
    parser.add_argument("--env", type=_pair, action="append", default=[],
                        metavar="KEY=VALUE", help="an environment value to send instead of "
                        "the sample one, e.g. callerid=2125550100 (repeat)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="give up when the server has not closed by then (default 30)")
    parser.add_argument("--hangup-at", type=int, metavar="N",
                        help="send HANGUP when the server's Nth command arrives")
    parser.add_argument("--dead", action="store_true",
                        help="the channel is already hung up (like a hangup handler)")
    parser.add_argument("--keys", action="append", default=[], metavar="DIGITS",
                        help="what the caller types at the next GET DATA, in order (repeat; "
                        "'-' types nothing), e.g. agent_login: --keys 501 --keys 1234")


def parse_connect(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--connect expects HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def report(result: SessionResult, out=sys.stdout) -> None:
    """Print the session: commands, then variables set by the server."""
    for command in result.commands:
        print(f"> {command}", file=out)
    for name, value in result.set_by_server.items():
        print(f"{name}={value}", file=out)


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    try:
        host, port = parse_connect(source.get("connect", DEFAULT_CONNECT))
    except ValueError as exc:
        print(f"ictcontact simulate: {exc}", file=sys.stderr)
        return 2
    timeout = args.timeout if args.timeout is not None else 30.0
    faults = Faults(hangup_at=args.hangup_at, dead=args.dead)
    from twisted.internet import reactor  # the one place the global reactor is used

    outcome: list = []
    session = run_session(reactor, host, port, args.script, tuple(args.args),
                          variables=dict(args.var), env=dict(args.env), faults=faults,
                          timeout=timeout,
                          keys=[None if k == "-" else k for k in args.keys])
    session.addBoth(outcome.append)
    session.addBoth(lambda _: reactor.stop())
    reactor.run()
    result = outcome[0] if outcome else None
    if not isinstance(result, SessionResult):
        reason = result.getErrorMessage() if result is not None else "interrupted"
        print(f"ictcontact simulate: cannot connect to {host}:{port}: {reason}",
              file=sys.stderr)
        return 1
    report(result)
    if not result.server_closed:
        print(f"ictcontact simulate: the server did not close the session within "
              f"{timeout:g} s", file=sys.stderr)
        return 1
    print(f"ictcontact simulate: server closed the session after "
          f"{result.elapsed * 1000:.0f} ms", file=sys.stderr)
    if result.set_by_server.get(v.RESULT) == v.REJECT:
        return EXIT_REJECTED  # a script can tell a refused call from an allowed one
    return 0
