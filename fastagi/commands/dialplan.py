"""`ictcontact dialplan generate|sync|check`: the per-client Asterisk contexts.

generate  print (or --out FILE) the [client-<code>] and [ict-from-carrier] contexts
sync      write them to --out only when they changed, then reload Asterisk's dialplan
          (asterisk -rx, or AMI); meant for cron / a systemd timer every minute
check     strictly parse dialplan files and check every jump, variable and AGI call
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastagi.ami import DEFAULT_PORT
from fastagi.db.engine import describe_failure
from fastagi.emergency import DEFAULT_NUMBERS, parse_numbers
from fastagi.settings import database_url, show_default, source_from_args

DEFAULT_OUT = "/etc/asterisk/ictcontact-clients.conf"
# asterisk-conf/manager.conf: the one user allowed Reload (write=system), kept apart from
# the server's originate/call user.
SYNC_AMI_USER = "ictcontact-sync"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    gen = sub.add_parser("generate", help="print the generated contexts")
    syn = sub.add_parser("sync", help="write the contexts if changed and reload Asterisk")
    for p in (gen, syn):
        p.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
        p.add_argument("--emergency-numbers",
                       help="comma-separated numbers routed to the trunk without the AGI "
                            "(default: the server's emergency-numbers setting, else "
                            f"{show_default(DEFAULT_NUMBERS)})")
    gen.add_argument("--out", help="write to this file (atomically) instead of stdout")
    syn.add_argument("--out", dest="dialplan_out",
                     help=f"the generated file (default {DEFAULT_OUT}; "
                          "env ICTCONTACT_DIALPLAN_OUT)")
    syn.add_argument("--reload", dest="dialplan_reload", choices=("rx", "ami", "none"),
                     help="how to reload: rx = asterisk -rx (default), ami, none")
    syn.add_argument("--force-reload", action="store_true", default=None,
                     help="reload even if Asterisk already runs this text")
    syn.add_argument("--asterisk-bin", help="asterisk binary for --reload rx")
    syn.add_argument("--ami-host", help="AMI host for --reload ami (default 127.0.0.1)")
    syn.add_argument("--ami-port", type=int, help=f"AMI port (default {DEFAULT_PORT})")
    syn.add_argument("--reload-ami-user",
                     help=f"AMI user for --reload ami (default {SYNC_AMI_USER}: the "
                          "manager.conf user with write=system, not the server's)")
    syn.add_argument("--reload-ami-secret",
                     help="its secret (better: env ICTCONTACT_RELOAD_AMI_SECRET)")
    chk = sub.add_parser("check", help="check dialplan files (one dialplan, in order)")
    chk.add_argument("files", nargs="+", help="extensions.conf-style files")


def _emergency(source) -> tuple[str, ...]:
    """The server's setting (same name, same places), so the dialplan and authorize agree."""
    from fastagi.dialplan.generate import GenerateError
    value = source.get("emergency_numbers", DEFAULT_NUMBERS, aliases=("emergency_prefixes",))
    try:
        return parse_numbers(value)
    except ValueError as exc:
        raise GenerateError(str(exc)) from exc


def _render(args, source) -> str:
    from fastagi.db.engine import make_engine
    from fastagi.dialplan.generate import generate
    engine = make_engine(database_url(source), pool_size=1)
    try:
        return generate(engine, _emergency(source))
    finally:
        engine.dispose()


def _reloader(source):
    from fastagi.dialplan import reload as reload_mod
    method = source.get("dialplan_reload", "rx")
    if method not in ("rx", "ami", "none"):
        from fastagi.settings import SettingsError
        raise SettingsError(f"dialplan reload must be rx, ami or none, not {method!r}")
    if method == "none":
        return None
    if method == "ami":
        target = reload_mod.AmiTarget(
            host=source.get("ami_host", "127.0.0.1"),
            port=source.get("ami_port", DEFAULT_PORT, int),
            username=source.get("reload_ami_user", SYNC_AMI_USER),
            secret=source.get("reload_ami_secret", ""))
        return lambda: reload_mod.reload_ami(target)
    binary = source.get("asterisk_bin", "asterisk")
    return lambda: reload_mod.reload_rx(binary)


def _check(files: list[str]) -> int:
    from fastagi.dialplan import check, confparse
    try:
        plan = confparse.dialplan_from_texts(
            *((f, Path(f).read_text(encoding="utf-8")) for f in files))
    except (OSError, confparse.ConfError) as exc:
        print(f"ictcontact: {exc}", file=sys.stderr)
        return 1
    found = check.problems(plan)
    for line in found:
        print(line)
    print(f"{len(plan.contexts)} contexts, {len(found)} problems", file=sys.stderr)
    return 1 if found else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check(args.files)
    from fastagi.dialplan import reload as reload_mod
    from fastagi.dialplan import sync as sync_mod
    from fastagi.dialplan.confparse import ConfError
    from fastagi.dialplan.generate import GenerateError
    source = source_from_args(args)
    try:
        content = _render(args, source)
        if args.action == "generate":
            if args.out:
                sync_mod.write_atomically(Path(args.out), content)
            else:
                sys.stdout.write(content)
            return 0
        out = source.get("dialplan_out", DEFAULT_OUT)
        result = sync_mod.sync(out, content, _reloader(source),
                               force_reload=bool(args.force_reload))
    except sync_mod.SyncBusy as exc:
        print(f"ictcontact: {exc}; nothing done", file=sys.stderr)
        return 0
    except (GenerateError, ConfError, reload_mod.ReloadError, OSError) as exc:
        print(f"ictcontact: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # database unreachable, bad URL: one line, not a traceback
        print(f"ictcontact: {describe_failure(exc)}", file=sys.stderr)
        return 1
    state = "rewritten" if result.changed else "unchanged"
    reloaded = ", dialplan reloaded" if result.reloaded else ""
    print(f"{result.path}: {state}{reloaded}")
    return 0
