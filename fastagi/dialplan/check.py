"""Static checks of a whole dialplan (shared routines + generated contexts + globals).

`problems(plan)` returns readable findings (empty = good):
- every application and dialplan function is one this dialplan is known to use
  (a typo would otherwise only show at call time);
- every Goto/GotoIf/Gosub/GosubIf/ExecIf target and every hangup handler names an
  existing context, extension and priority or label; targets are never computed;
- every variable read is set somewhere: by Set(), in [globals], by the AGI script the
  dialplan calls (fastagi.dialplan.names.SCRIPT_SETS), by the dialer's Originate
  (names.ORIGINATE_SETS), or is an Asterisk built-in;
- every AGI() call is `${ICTCONTACT_AGI}/<script>` for a script the server serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastagi.dialplan import names
from fastagi.dialplan.confparse import Dialplan, Step

# Applications and functions this dialplan uses, all in a stock Asterisk 20/22 build.
KNOWN_APPS = {"AGI", "Answer", "Dial", "ExecIf", "Gosub", "GosubIf", "Goto", "GotoIf",
              "Hangup", "NoOp", "Playback", "Progress", "Queue", "Return", "Set", "Verbose"}
KNOWN_FUNCTIONS = {"CHANNEL", "FILTER", "IF", "LEN", "PJSIP_DIAL_CONTACTS", "TIMEOUT"}

# Variables Asterisk itself sets (documented in app_dial, res_agi, app_stack, pbx).
BUILTIN_VARIABLES = {"EXTEN", "CONTEXT", "PRIORITY", "AGISTATUS", "DIALSTATUS",
                     "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "HANGUPCAUSE", "QUEUESTATUS",
                     *(f"ARG{i}" for i in range(1, 10))}

VAR_TOKEN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(\(?)")
AGI_ARG = re.compile(r"^\$\{" + names.AGI_URL + r"\}/([a-z_]+)(?:,|$)")


@dataclass(frozen=True)
class Target:
    context: str
    exten: str
    priority: str          # a number or a label
    args: str


def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside ${...}, $[...] and (...)."""
    parts, depth, buf, i = [], 0, [], 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text) and text[i + 1] in "{[":
            depth += 1
            buf.append(text[i:i + 2])
            i += 2
            continue
        if ch in "(":
            depth += 1
        elif ch in ")}]" and depth:
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def parse_target(text: str, step: Step) -> Target:
    """`[[context,]exten,]priority[(args)]` relative to the step's own location."""
    text = text.strip()
    args = ""
    match = re.match(r"^(.*?)\((.*)\)$", text, re.S)
    if match:
        text, args = match.group(1), match.group(2)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1:
        return Target(step.context, step.exten, parts[0], args)
    if len(parts) == 2:
        return Target(step.context, parts[0], parts[1], args)
    if len(parts) == 3:
        return Target(parts[0], parts[1], parts[2], args)
    raise ValueError(f"bad target {text!r}")


def branch_targets(args: str) -> list[str]:
    """The labels of `cond?a[:b]` (GotoIf/GosubIf)."""
    halves = split_top(args, "?")
    if len(halves) != 2:
        raise ValueError(f"no '?' in {args!r}")
    return [t for t in split_top(halves[1], ":") if t.strip()]


def step_targets(step: Step) -> list[tuple[str, Target]]:
    """(kind, target) for every jump a step can make: kind 'goto', 'gosub' or 'handler'."""
    found: list[tuple[str, Target]] = []
    app, args = step.app, step.args
    if app == "Goto":
        found.append(("goto", parse_target(args, step)))
    elif app == "Gosub":
        found.append(("gosub", parse_target(args, step)))
    elif app in ("GotoIf", "GosubIf"):
        kind = "goto" if app == "GotoIf" else "gosub"
        found.extend((kind, parse_target(t, step)) for t in branch_targets(args))
    elif app == "ExecIf":
        for inner in branch_targets(args):
            match = re.match(r"^([A-Za-z]+)\((.*)\)$", inner.strip(), re.S)
            if match:
                nested = Step(step.context, step.exten, step.priority, None,
                              match.group(1), match.group(2), step.line, step.path)
                found.extend(step_targets(nested))
    elif app == "Set" and args.startswith("CHANNEL(hangup_handler_push)="):
        found.append(("handler", parse_target(args.split("=", 1)[1], step)))
    return found


def inner_apps(step: Step) -> list[tuple[str, str]]:
    """(app, args) the step runs, looking inside ExecIf."""
    if step.app != "ExecIf":
        return [(step.app, step.args)]
    out = []
    for inner in branch_targets(step.args):
        match = re.match(r"^([A-Za-z]+)\((.*)\)$", inner.strip(), re.S)
        out.append((match.group(1), match.group(2)) if match else (inner.strip(), ""))
    return out


def resolve(plan: Dialplan, target: Target) -> Step | None:
    """The step a target lands on, or None. Targets must be literal."""
    context = plan.contexts.get(target.context)
    if context is None:
        return None
    steps = context.extensions.get(target.exten)
    if not steps:
        return None
    for step in steps:
        if target.priority.isdigit() and step.priority == int(target.priority):
            return step
        if step.label == target.priority:
            return step
    return None


def variables_set(plan: Dialplan) -> set[str]:
    found = set(plan.globals) | BUILTIN_VARIABLES | set(names.ORIGINATE_SETS)
    for step in plan.steps():
        for app, args in inner_apps(step):
            if app == "Set":
                name = args.split("=", 1)[0].strip()
                if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    found.add(name)
            if app == "AGI":
                match = AGI_ARG.match(args)
                if match:
                    found.update(names.SCRIPT_SETS.get(match.group(1), ()))
    return found


def variables_read(step: Step) -> tuple[set[str], set[str]]:
    """(variables, functions) the step reads."""
    variables, functions = set(), set()
    for match in VAR_TOKEN.finditer(step.args):
        (functions if match.group(2) else variables).add(match.group(1))
    return variables, functions


def agi_scripts(plan: Dialplan) -> list[tuple[Step, str | None]]:
    out = []
    for step in plan.steps():
        for app, args in inner_apps(step):
            if app == "AGI":
                match = AGI_ARG.match(args)
                out.append((step, match.group(1) if match else None))
    return out


def problems(plan: Dialplan) -> list[str]:
    found: list[str] = []
    have = variables_set(plan)
    for step in plan.steps():
        where = f"{step.path}:{step.line} [{step.context}] {step.exten},{step.priority}"
        for app, _ in inner_apps(step):
            if app not in KNOWN_APPS:
                found.append(f"{where}: unknown application {app}")
        try:
            targets = step_targets(step)
        except ValueError as exc:
            found.append(f"{where}: {exc}")
            targets = []
        for kind, target in targets:
            if "$" in f"{target.context},{target.exten},{target.priority}":
                found.append(f"{where}: computed {kind} target {target}")
            elif resolve(plan, target) is None:
                found.append(f"{where}: {kind} target {target.context},{target.exten},"
                             f"{target.priority} does not exist")
        variables, functions = variables_read(step)
        for name in sorted(variables - have):
            found.append(f"{where}: reads ${{{name}}}, which nothing sets")
        for name in sorted(functions - KNOWN_FUNCTIONS):
            found.append(f"{where}: unknown function {name}()")
    for step, script in agi_scripts(plan):
        if script not in names.SCRIPT_SETS:
            found.append(f"{step.path}:{step.line}: AGI({step.args}) is not "
                         f"${{{names.AGI_URL}}}/<one of {sorted(names.SCRIPT_SETS)}>")
    for context in plan.contexts.values():
        for include in context.includes:
            if include not in plan.contexts:
                found.append(f"{context.path}: [{context.name}] includes missing [{include}]")
    return found


def reachable_steps(plan: Dialplan, context: str, exten: str) -> list[Step]:
    """Every step a call entering context/exten may run (Goto/Gosub/ExecIf followed;
    hangup handlers included)."""
    seen: set[tuple[str, str]] = set()
    out: list[Step] = []
    todo = [(context, exten)]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        steps = plan.contexts.get(key[0], None)
        for step in (steps.extensions.get(key[1], []) if steps else []):
            out.append(step)
            for _, target in step_targets(step):
                todo.append((target.context, target.exten))
    return out
