"""The package's layers hold: no import cycle, no import against the layer order.

Each module of ``harness`` may import (at module level or inside a function) only the
layers below its own, as CONTRIBUTING.md draws them; ``recipe/`` is pure (no engine, no
process, no network); inside ``lifecycle/`` the order is ``tiers → deps → run → app →
context``. A change that breaks a rule fails here, naming the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# The layers, lowest first: a module may import its own layer's base modules and every
# layer below. The name is a top-level module or package of harness.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors"}),
    frozenset({"redact", "files", "deadline", "proc", "chromium", "config"}),
    frozenset({"recipe"}),
    frozenset({"swarm", "fetch"}),
    frozenset({"reports"}),
    frozenset({"lifecycle"}),
    frozenset({"collect", "fixtures", "scheduling", "settings", "plugin"}),
    frozenset({"ci"}),
    frozenset({"serve"}),
    frozenset({"cli"}),
)
# Within a layer, who may import whom (besides itself).
SIDEWAYS = {
    "chromium": {"proc"},
    "fixtures": {"collect"},
    "plugin": {"collect", "scheduling", "settings"},
    "collect": {"scheduling", "settings"},
}
# Above the seams, yet not theirs to use: what reports show comes from files.
NOT_ABOVE = {"reports": {"swarm", "fetch"}}
LIFECYCLE_ORDER = ("tiers", "deps", "run", "app", "context")
PURE = ("docker", "subprocess", "httpx", "playwright", "filelock")


def _layer(name: str) -> int:
    return next(n for n, layer in enumerate(LAYERS) if name in layer)


def _imports() -> dict[str, set[str]]:
    """Every module of harness (dotted, without ``harness.``) and what it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(HARNESS.rglob("*.py")):
        module = ".".join(path.relative_to(HARNESS).with_suffix("").parts)
        module = module.removesuffix(".__init__").removesuffix("__init__") or "harness"
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                if node.module == "harness":
                    names |= {f"harness.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
        found[module] = names
    return found


IMPORTS = _imports()


def _top(dotted: str) -> str:
    return dotted.split(".")[0]


def test_every_module_is_in_a_layer() -> None:
    tops = {_top(m) for m in IMPORTS if m != "harness"}
    assert tops <= set().union(*LAYERS), tops - set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in IMPORTS if m != "harness"))
def test_a_module_imports_only_what_is_below_it(module: str) -> None:
    own = _top(module)
    wrong = []
    for name in IMPORTS[module]:
        if not name.startswith("harness.") or _top(name[8:]) == own:
            continue
        other = _top(name[8:])
        if (
            _layer(other) > _layer(own)
            or (_layer(other) == _layer(own) and other not in SIDEWAYS.get(own, set()))
            or other in NOT_ABOVE.get(own, set())
        ):
            wrong.append(name)
    assert wrong == [], f"harness.{module} imports against the layer order: {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in IMPORTS if _top(m) == "recipe"))
def test_recipe_is_pure(module: str) -> None:
    impure = sorted(
        n
        for n in IMPORTS[module]
        if _top(n) in PURE or n.startswith(("harness.swarm", "harness.proc", "harness.fetch"))
    )
    assert impure == [], f"harness.{module} is not pure: {impure}"


@pytest.mark.parametrize("module", LIFECYCLE_ORDER)
def test_the_lifecycle_imports_in_its_order(module: str) -> None:
    later = LIFECYCLE_ORDER[LIFECYCLE_ORDER.index(module) + 1 :]
    earlier = set(LIFECYCLE_ORDER) - set(later) - {module}
    wrong = sorted(
        n for n in IMPORTS[f"lifecycle.{module}"] if n.removeprefix("harness.lifecycle.") in earlier
    )
    assert wrong == [], f"lifecycle.{module} imports what comes before it: {wrong}"


def test_there_is_no_import_cycle() -> None:
    graph = {
        m: {n[8:] for n in names if n.startswith("harness.") and n[8:] in IMPORTS}
        for m, names in IMPORTS.items()
    }
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                return [*path, module, other]
            if other not in state and (cycle := visit(other, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle[cycle.index(cycle[-1]) :])
