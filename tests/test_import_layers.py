"""The package's import graph has no cycles, so its folders tell the truth about what
depends on what.

Every import that runs counts: at module level and inside functions (a lazy import is
still a dependency). Imports under ``if TYPE_CHECKING:`` don't: they name a type for
the checker, which is how a façade and the module implementing it may name each other.
``from package import name`` counts as an import of the submodule the package takes
``name`` from, so a package re-exporting its parts is not a cycle by itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import runtable

SRC = Path(runtable.__file__).parent

#: Cycles that stay, each with the reason. A cycle not listed here fails the test, and
#: so does a listed one that is gone (take it off the list).
KNOWN_CYCLES: dict[frozenset[str], str] = {
    frozenset({"runtable.context.errors", "runtable.context.group",
               "runtable.context.variable"}):
        "the reference's exception types and Group/Variable refer to each other, "
        "through deferred imports, behind DAMNIT-compatible API",
    frozenset({"runtable.context.loader", "runtable.context.pipeline"}):
        "Pipeline's DAMNIT-compatible constructors load a file through a deferred import",
    frozenset({"runtable.store.table", "runtable.store.tablecopy",
               "runtable.store.tableread"}):
        "the read path's engines: read_table picks the copy or the SQL reader, which "
        "build on its column types (deferred imports, to keep pyarrow off import)",
    frozenset({"runtable.context.check", "runtable.server.contextcheck"}):
        "`runtable check` loads the file in a child process through the editor's "
        "checker, which lints with context.check",
    frozenset({"runtable.cli", "runtable.demo.live", "runtable.demo.run",
               "runtable.tableview"}):
        "the demo and the table view print command lines with cli.runtable_command",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, is_package: bool) -> list[tuple[str, str | None]]:
    """(module, imported name or None) of every import of ``name`` that runs."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend((module, alias.name) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ``runtable`` it imports (at run time)."""
    modules = _modules()
    imports = {name: _imports(name, *where) for name, where in modules.items()}
    # Where a package's __init__ takes each name it re-exports from.
    reexported = {(name, attr): module
                  for name, (_, is_package) in modules.items() if is_package
                  for module, attr in imports[name]
                  if attr is not None and module in modules and module != name}

    def target(module: str, attr: str | None) -> str:
        if attr is not None and f"{module}.{attr}" in modules:
            return f"{module}.{attr}"
        seen: set[str] = set()
        while (module, attr) in reexported and module not in seen:
            seen.add(module)
            module = reexported[(module, attr)]
        return module

    return {name: {t for module, attr in found if module in modules
                   for t in [target(module, attr)] if t != name}
            for name, found in imports.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_finder_sees_a_cycle_through_a_lazy_import_and_a_package() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_runtable_imports_itself_through_others() -> None:
    found = cycles(import_graph())
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}; move what both sides need to a lower module"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"these cycles are gone, take them off KNOWN_CYCLES: {gone}"


def test_the_service_and_the_server_import_neither_the_cli_nor_its_batch_module() -> None:
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith(("runtable.service", "runtable.server")):
            assert not imported & {"runtable.cli", "runtable.reprocess"}, name
        if name.startswith("runtable.service"):
            assert not {m for m in imported if m.startswith("runtable.server")}, name
