"""The layout holds: no import circle in fastagi/, SQL only in the store and db layers,
the fakes out of the product's path, and routes/ holding only route handlers.

Read from the source with ast (every import, at module level or inside a function, and
those under TYPE_CHECKING too), so a rule broken anywhere fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fastagi"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The fastagi modules `name` imports (a package import counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        out |= {t for t in targets if t in MODULES and t != name}
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(GRAPH):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_the_graph_is_read():
    # the walk must see real edges, or the cycle test below proves nothing
    assert "fastagi.store.calls" in GRAPH["fastagi.routes.authorize"]
    assert "fastagi.ami.message" in GRAPH["fastagi.ami.errors"]
    assert len(MODULES) > 80


def test_no_import_circle():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_the_cycle_finder_finds_a_circle(monkeypatch):
    monkeypatch.setitem(GRAPH, "fastagi.ami.message", GRAPH["fastagi.ami.message"]
                        | {"fastagi.ami.errors"})
    cycle = _cycle()
    assert cycle[0] == cycle[-1] and set(cycle) == {"fastagi.ami.errors", "fastagi.ami.message"}


def _sql_modules() -> set[str]:
    """Modules that import sqlalchemy's `text` or PyMySQL cursors' SQL, or write SQL."""
    found = set()
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy"
                    and any(alias.name == "text" for alias in node.names)):
                found.add(name)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "exec_driver_sql", "executemany")):
                found.add(name)
    return found


def test_sql_lives_in_the_store_and_db_layers_only():
    outside = sorted(m for m in _sql_modules()
                     if not m.startswith(("fastagi.store.", "fastagi.db.")))
    assert outside == []


def test_the_fakes_stay_out_of_the_product():
    users = sorted(name for name, imports in GRAPH.items()
                   if not name.startswith("fastagi.testing")
                   and any(i.startswith("fastagi.testing") for i in imports))
    assert users == ["fastagi.commands.simulate"]     # simulate plays Asterisk's side


def test_routes_holds_only_route_handlers():
    from fastagi.routes import ROUTES
    handlers = {handle.__module__ for handle in ROUTES.values()}
    modules = {name for name in MODULES if name.startswith("fastagi.routes.")}
    assert modules == handlers


@pytest.mark.parametrize("rule_module", ["fastagi.billing.admission", "fastagi.billing.settlement",
                                         "fastagi.billing.slices", "fastagi.agents.rules",
                                         "fastagi.emergency", "fastagi.clock"])
def test_pure_rules_touch_no_wire_store_or_database(rule_module):
    touched = sorted(i for i in GRAPH[rule_module]
                     if i.startswith(("fastagi.agi", "fastagi.ami", "fastagi.store",
                                      "fastagi.db", "fastagi.routes", "fastagi.jobs")))
    assert touched == []


@pytest.mark.parametrize("wire", ["fastagi.agi", "fastagi.ami"])
def test_the_wire_knows_nothing_above_it(wire):
    above = ("fastagi.store", "fastagi.db", "fastagi.routes", "fastagi.jobs", "fastagi.billing",
             "fastagi.agents", "fastagi.campaigns", "fastagi.dialplan", "fastagi.commands",
             "fastagi.arguments", "fastagi.testing")
    touched = sorted(f"{name} -> {i}" for name, imports in GRAPH.items()
                     if name.startswith(wire + ".") for i in imports if i.startswith(above))
    assert touched == []


def test_argument_parsers_touch_no_store_or_database():
    touched = sorted(f"{name} -> {i}" for name, imports in GRAPH.items()
                     if name.startswith("fastagi.arguments.") for i in imports
                     if i.startswith(("fastagi.store", "fastagi.db", "fastagi.services")))
    assert touched == []
