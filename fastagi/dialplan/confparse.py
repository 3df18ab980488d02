"""A strict reader for Asterisk .conf files and extensions.conf dialplans.

Asterisk itself only logs a warning for many malformed lines and carries on; this reader
refuses them (ConfError names the file and line), so a broken sample or a broken
generated file is caught by the tests, not by a customer's phone. It understands what
pyst2's `asterisk.config` cannot: `[name](!)` templates and `[name](tpl)` inheritance,
`#include`/`#tryinclude`, `;-- block comments --;`, `\\;` escapes, and the dialplan
forms `exten => name,prio(label),App(args)` and `same => n(label),App(args)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


class ConfError(ValueError):
    """A line Asterisk would not read as meant; the message is `path:line: why`."""


@dataclass(frozen=True)
class Item:
    key: str
    op: str            # '=' or '=>'
    value: str
    line: int


@dataclass
class Section:
    name: str
    options: tuple[str, ...]   # '!' template, '+' append, or template names
    line: int
    items: list[Item] = field(default_factory=list)

    @property
    def is_template(self) -> bool:
        return "!" in self.options

    def get(self, key: str) -> str | None:
        values = [item.value for item in self.items if item.key == key]
        return values[-1] if values else None


@dataclass
class ConfFile:
    path: str
    sections: list[Section]
    includes: list[tuple[str, str, int]]    # (directive, file, line)

    def section(self, name: str) -> Section:
        found = [s for s in self.sections if s.name == name]
        if not found:
            raise KeyError(f"{self.path}: no [{name}]")
        return found[0]

    def names(self) -> list[str]:
        return [s.name for s in self.sections]


SECTION_RE = re.compile(r"^\[([^\[\]]+)\]\s*(?:\(([^()]*)\))?$")
DIRECTIVE_RE = re.compile(r"^#(include|tryinclude|exec)\s+(\"[^\"]+\"|\S+)\s*$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.\-/]+( [A-Za-z0-9_.\-/]+)?$")  # "alias start"


def strip_comments(text: str, path: str) -> list[tuple[int, str]]:
    """(line number, content) with comments removed, `\\;` kept as a literal `;`."""
    out: list[tuple[int, str]] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        buf: list[str] = []
        i = 0
        while i < len(raw):
            if in_block:
                end = raw.find("--;", i)
                if end == -1:
                    i = len(raw)
                    continue
                in_block = False
                i = end + 3
                continue
            ch = raw[i]
            if ch == "\\" and i + 1 < len(raw) and raw[i + 1] == ";":
                buf.append(";")
                i += 2
                continue
            if ch == ";":
                if raw.startswith(";--", i):
                    in_block = True
                    i += 3
                    continue
                break
            buf.append(ch)
            i += 1
        out.append((number, "".join(buf).strip()))
    if in_block:
        raise ConfError(f"{path}: block comment ;-- never closed with --;")
    return out


def parse_conf(text: str, path: str = "<text>") -> ConfFile:
    """Parse one file (includes are recorded, not followed)."""
    sections: list[Section] = []
    includes: list[tuple[str, str, int]] = []
    current: Section | None = None
    for number, line in strip_comments(text, path):
        if not line:
            continue
        where = f"{path}:{number}"
        if line.startswith("#"):
            match = DIRECTIVE_RE.match(line)
            if not match:
                raise ConfError(f"{where}: unknown or malformed directive {line!r}")
            includes.append((match.group(1), match.group(2).strip('"'), number))
            continue
        if line.startswith("["):
            match = SECTION_RE.match(line)
            if not match:
                raise ConfError(f"{where}: malformed section header {line!r}")
            options = tuple(o.strip() for o in (match.group(2) or "").split(",") if o.strip())
            if match.group(2) is not None and not options:
                raise ConfError(f"{where}: empty option list in {line!r}")
            current = Section(match.group(1).strip(), options, number)
            sections.append(current)
            continue
        if "=" not in line:
            raise ConfError(f"{where}: no '=' in {line!r}")
        if current is None:
            raise ConfError(f"{where}: setting before any [section]: {line!r}")
        key, rest = line.split("=", 1)
        op = "=>" if rest.startswith(">") else "="
        value = rest[1:] if op == "=>" else rest
        key = key.strip()
        if not KEY_RE.match(key):
            raise ConfError(f"{where}: bad name {key!r}")
        current.items.append(Item(key, op, value.strip(), number))
    return ConfFile(path, sections, includes)


def read_conf(path: str | Path) -> ConfFile:
    path = Path(path)
    return parse_conf(path.read_text(encoding="utf-8"), str(path))


# --- dialplan ---------------------------------------------------------------------------

APP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$", re.S)
PRIORITY_RE = re.compile(r"^(\d+|n|hint)(?:\(([A-Za-z0-9_]+)\))?$")
EXTEN_NAME_RE = re.compile(r"^(_?[A-Za-z0-9+*#.!\[\]\-]+|s|h|i|t|e|o|a)$")


@dataclass(frozen=True)
class Step:
    """One priority of an extension."""

    context: str
    exten: str
    priority: int
    label: str | None
    app: str
    args: str
    line: int
    path: str


@dataclass
class Context:
    name: str
    path: str
    extensions: dict[str, list[Step]] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


@dataclass
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    def steps(self):
        for context in self.contexts.values():
            for steps in context.extensions.values():
                yield from steps


def check_balanced(text: str, where: str) -> None:
    """Parentheses, ${ } and $[ ] must nest properly (Asterisk would misparse otherwise)."""
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            stack.append("(")
        elif ch == "$" and i + 1 < len(text) and text[i + 1] in "{[":
            stack.append(text[i + 1])
            i += 1
        elif ch in pairs:
            if ch == "]" and (not stack or stack[-1] != "["):
                pass  # a literal ] (pattern classes) outside $[ ]
            elif not stack or stack.pop() != pairs[ch]:
                raise ConfError(f"{where}: unbalanced {ch!r} in {text!r}")
        i += 1
    if stack:
        raise ConfError(f"{where}: unclosed {stack[-1]!r} in {text!r}")


def parse_app(text: str, where: str) -> tuple[str, str]:
    match = APP_RE.match(text.strip())
    if not match:
        raise ConfError(f"{where}: not an application call: {text!r}")
    args = match.group(2) or ""
    check_balanced(args, where)
    return match.group(1), args


def add_dialplan(plan: Dialplan, conf: ConfFile) -> Dialplan:
    """Add the contexts of one extensions.conf-style file to `plan` (strictly)."""
    for section in conf.sections:
        where0 = f"{conf.path}:{section.line}"
        if section.name == "general":
            continue
        if section.name == "globals":
            for item in section.items:
                plan.globals[item.key] = item.value
            continue
        if section.options:
            raise ConfError(f"{where0}: dialplan context [{section.name}] cannot be a template")
        if section.name in plan.contexts:
            raise ConfError(f"{where0}: context [{section.name}] defined twice "
                            f"(also in {plan.contexts[section.name].path})")
        context = Context(section.name, conf.path)
        plan.contexts[section.name] = context
        last_exten: str | None = None
        for item in section.items:
            where = f"{conf.path}:{item.line}"
            if item.op != "=>":
                raise ConfError(f"{where}: dialplan lines use '=>': {item.key} = {item.value}")
            if item.key == "include":
                context.includes.append(item.value)
                continue
            if item.key == "exten":
                parts = item.value.split(",", 2)
                if len(parts) != 3:
                    raise ConfError(f"{where}: exten needs name,priority,application")
                name, priority, app_text = (p.strip() for p in parts)
                if not EXTEN_NAME_RE.match(name):
                    raise ConfError(f"{where}: bad extension name {name!r}")
                last_exten = name
            elif item.key == "same":
                if last_exten is None:
                    raise ConfError(f"{where}: 'same' before any exten in [{section.name}]")
                parts = item.value.split(",", 1)
                if len(parts) != 2:
                    raise ConfError(f"{where}: same needs priority,application")
                name = last_exten
                priority, app_text = (p.strip() for p in parts)
            else:
                raise ConfError(f"{where}: unknown dialplan keyword {item.key!r}")
            match = PRIORITY_RE.match(priority)
            if not match:
                raise ConfError(f"{where}: bad priority {priority!r}")
            steps = context.extensions.setdefault(name, [])
            if match.group(1) == "n":
                if not steps:
                    raise ConfError(f"{where}: priority n with no priority before it")
                number = steps[-1].priority + 1
            elif match.group(1) == "hint":
                continue
            else:
                number = int(match.group(1))
                if steps and number != steps[-1].priority + 1 or not steps and number != 1:
                    raise ConfError(f"{where}: priority {number} out of sequence in {name}")
            label = match.group(2)
            if label and any(s.label == label for s in steps):
                raise ConfError(f"{where}: label {label!r} used twice in {name}")
            app, args = parse_app(app_text, where)
            steps.append(Step(section.name, name, number, label, app, args, item.line,
                              conf.path))
    return plan


def dialplan_from_texts(*named_texts: tuple[str, str]) -> Dialplan:
    """A Dialplan from (path, text) pairs, in order."""
    plan = Dialplan()
    for path, text in named_texts:
        add_dialplan(plan, parse_conf(text, path))
    return plan
