"""The package's import graph has no cycles: not at module level, not inside functions.

``if TYPE_CHECKING:`` imports are left out (they never run). ``from peftfix.x import name`` counts as an import
of ``peftfix.x.name`` when that is a module, else of ``peftfix.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import peftfix

PACKAGE_ROOT = Path(peftfix.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool):
    """Every import statement that can run, however nested (functions included)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                yield f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
        pending.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = _imports(tree, module, path.name == "__init__.py")
        graph[module] = {target for target in targets if target in MODULES and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # cli/__init__ imports nothing of the check command at module level; peftfix/__init__ imports lazily.
    assert "peftfix.source.engine" in graph["peftfix.source.runner"]  # inside check_data
    assert "peftfix.source.registry" in graph["peftfix.catalog"]  # inside all_codes


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_settings_is_a_leaf():
    assert import_graph()["peftfix.source.settings"] == set()


def test_call_semantics_do_not_import_the_interpreter():
    graph = import_graph()
    assert "peftfix.source.flow.interpreter" not in graph["peftfix.source.flow.calls"]
