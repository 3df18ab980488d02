"""Play [ict-outbound] of the shipped dialplan step by step, as Asterisk would, with the
fake Asterisk for every AGI() against a real FastAGI server and a script for Dial().

Only what [ict-outbound] and [ict-after-dial] use is understood (Set, NoOp, GotoIf, Goto,
ExecIf(...?Hangup(...)), Hangup, AGI, Dial; ${VAR}, ${FILTER()}, ${LEN()}, $[...] with
= != < <= > >= & | +); anything else fails the test. The play ends where the call leaves
the routine (ict-after-dial, ict-reject, ict-fail-closed); [ict-after-dial] is played on to
its Hangup (`Play.hangup`: the cause the caller's channel is hung up with); then the
settle hangup handler's AGI runs as [ict-settle] does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from fastagi.dialplan import check, names
from fastagi.dialplan.confparse import Dialplan

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
FUNC = re.compile(r"\$\{(FILTER|LEN)\(([^${}()]*)\)\}")
EXPR = re.compile(r"\$\[([^\[\]$]*)\]")
AFTER_DIAL = "ict-after-dial"

# (dial target) -> (DIALSTATUS, HANGUPCAUSE)
DialScript = Callable[[str], tuple[str, int]]
Agi = Callable[[str, list[str], dict], Awaitable[tuple[bool, dict]]]


def _filter(allowed: str, value: str) -> str:
    return "".join(ch for ch in value if ch in allowed)


def substitute(text: str, chan: dict) -> str:
    while True:
        before = text
        text = VAR.sub(lambda m: chan.get(m.group(1), ""), text)
        text = FUNC.sub(lambda m: (_filter(*m.group(2).split(",", 1)) if m.group(1) == "FILTER"
                                   else str(len(m.group(2)))), text)
        text = EXPR.sub(lambda m: str(evaluate(m.group(1))), text)
        if text == before:
            return text


def evaluate(expr: str):
    parts = re.split(r'("[^"]*")', expr)
    out = []
    for part in parts:
        if part.startswith('"'):
            out.append(repr(part[1:-1]))
            continue
        part = re.sub(r"\b0+(\d)", r"\1", part)
        part = part.replace("!=", " NE ").replace(">=", " GE ").replace("<=", " LE ")
        part = part.replace("=", "==").replace(" NE ", "!=").replace(" GE ", ">=")
        part = part.replace(" LE ", "<=").replace("&", " and ").replace("|", " or ")
        out.append(part)
    value = eval("".join(out), {"__builtins__": {}}, {})  # test-only: our own dialplan text
    return int(value) if isinstance(value, bool) else value


@dataclass
class Play:
    ended_in: str = ""                       # the context the call left to
    dials: list[str] = field(default_factory=list)
    agi_calls: list[tuple[str, list[str], dict]] = field(default_factory=list)
    chan: dict = field(default_factory=dict)
    hangup: str = ""                         # [ict-after-dial]'s Hangup() cause


def play_after_dial(plan: Dialplan, chan: dict) -> str:
    """Play [ict-after-dial] on the channel's DIALSTATUS / HANGUPCAUSE: the Hangup() cause."""
    steps = [s for ss in plan.contexts[AFTER_DIAL].extensions.values() for s in ss]
    labels = {s.label: i for i, s in enumerate(steps) if s.label}
    i = 0
    while i < len(steps):
        step = steps[i]
        i += 1
        if step.app == "Set":
            name, value = step.args.split("=", 1)
            chan[name] = substitute(value, chan)
        elif step.app == "GotoIf":
            cond, target = step.args.split("?", 1)
            if int(substitute(cond, chan)):
                i = labels[target]
        elif step.app == "ExecIf":
            cond, app = step.args.split("?", 1)
            if not app.startswith("Hangup("):
                raise AssertionError(f"the player does not know ExecIf {app}")
            if int(substitute(cond, chan)):
                return substitute(app[len("Hangup("):-1], chan)
        elif step.app == "Hangup":
            return substitute(step.args, chan)
        elif step.app != "NoOp":
            raise AssertionError(f"the player does not know {step.app} ({step.path}:{step.line})")
    raise AssertionError("ict-after-dial did not hang up")


async def play_outbound(plan: Dialplan, client: str, number: str, dial: DialScript,
                        agi: Agi, max_steps: int = 200) -> Play:
    steps = [s for ss in plan.contexts[names.OUTBOUND].extensions.values() for s in ss]
    labels = {s.label: i for i, s in enumerate(steps) if s.label}
    play = Play(chan={"ARG1": client, "ARG2": number, "ICTCONTACT_AGI": "agi://x",
                      "ICTCONTACT_RING_TIMEOUT": "30"})
    chan, i = play.chan, 0
    for _ in range(max_steps):
        step = steps[i]
        i += 1
        if step.app == "NoOp":
            continue
        if step.app == "Set":
            name, value = step.args.split("=", 1)
            if not name.startswith("CHANNEL("):
                chan[name] = substitute(value, chan)
            continue
        if step.app in ("GotoIf", "Goto"):
            if step.app == "GotoIf":
                cond, target = step.args.split("?", 1)
                if not int(substitute(cond, chan)):
                    continue
            else:
                target = step.args
            if "," in target:
                play.ended_in = target.split(",")[0]
                break
            i = labels[target]
            continue
        if step.app == "AGI":
            args = [substitute(a, chan) for a in check.split_top(step.args, ",")]
            script = args[0].rsplit("/", 1)[1]
            ok, variables = await agi(script, args[1:], chan)
            play.agi_calls.append((script, args[1:], variables))
            chan.update(variables)
            chan["AGISTATUS"] = "SUCCESS" if ok else "FAILURE"
            continue
        if step.app == "Dial":
            target = substitute(check.split_top(step.args, ",")[0], chan)
            play.dials.append(target)
            chan["DIALSTATUS"], cause = dial(target)
            chan["HANGUPCAUSE"] = str(cause)
            continue
        raise AssertionError(f"the player does not know {step.app} ({step.path}:{step.line})")
    else:
        raise AssertionError("ict-outbound did not end")
    if play.ended_in == AFTER_DIAL:
        play.hangup = play_after_dial(plan, chan)
    # the hangup handler, as [ict-settle] runs it
    if chan.get("ICT_CALL_ID"):
        status = chan.get("DIALSTATUS") or "CANCEL"
        args = [chan["ICT_CALL_ID"], "ms=", status]
        ok, variables = await agi("settle", args, chan)
        play.agi_calls.append(("settle", args, variables))
        chan.update(variables)
    return play
