"""workflow_lib has no import cycles: every module's imports of other workflow_lib modules, at module
level and inside functions alike, form a graph without cycles.

An import tucked into a function only postpones a cycle to the first call (and hides the layering);
so function-level imports count here exactly like top-level ones. The implicit import of a parent
package (``import workflow_lib.data.loader`` first runs ``workflow_lib/data/__init__.py``) is not an
edge: a package importing its own submodules is the normal shape of a package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "workflow_lib"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package under ``root``."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``source`` (module ``module``) imports, anywhere in the file."""
    package = module if is_package else module.rpartition(".")[0]

    def nearest(name: str) -> str | None:  # the longest known module that ``name`` is or lies in
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [nearest(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from ..data import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import name": the submodule pkg.name when there is one, else pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else nearest(base) for a in node.names]
        else:
            continue
        found.update(t for t in targets if t is not None and t != module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    known = set(files)
    return {
        m: imported_modules(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", known) for m, p in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (a -> ... -> a): for every module that lies on one, the shortest through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components (a small graph: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = set()
    for comp in components:
        for start in comp:  # breadth-first: the shortest way from start back to itself
            paths, queue, cycle = {start: [start]}, [start], None
            while queue and cycle is None:
                v = queue.pop(0)
                for w in sorted(graph[v] & comp):
                    if w == start:
                        cycle = paths[v]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        queue.append(w)
            i = cycle.index(min(cycle))  # the same cycle found from each of its modules: one rotation
            found.add(tuple(cycle[i:] + cycle[:i] + [cycle[i]]))
    return sorted(map(list, found))


def _short(module: str) -> str:
    return module[len(PACKAGE) + 1 :] if module.startswith(PACKAGE + ".") else module


def test_workflow_lib_has_no_import_cycles(repo):
    found = cycles(import_graph(repo))
    assert found == [], "import cycles in workflow_lib (module-level and function-level imports):\n" + "\n".join(
        "  " + " -> ".join(map(_short, c)) for c in found
    )


def test_every_module_is_parsed_and_the_graph_is_real(repo):
    graph = import_graph(repo)
    assert "workflow_lib.learning.models.model" in graph and "workflow_lib.data.loader" in graph
    # a top-level, a function-level and a "from package import module" edge of today's code
    assert "workflow_lib.config.schema" in graph["workflow_lib.config.search_space"]
    assert "workflow_lib.learning.models.model" in graph["workflow_lib.learning.checkpoint"]  # inside functions
    assert (
        "workflow_lib.persistence.storage" in graph["workflow_lib.learning.epoch_states"]
    )  # from workflow_lib.persistence import storage


def test_function_level_and_relative_imports_are_edges():
    known = {"workflow_lib", "workflow_lib.a", "workflow_lib.b", "workflow_lib.sub", "workflow_lib.sub.c"}
    src = (
        "import os\n\ndef f():\n    from workflow_lib.a import x\n\nclass K:\n    def g(self):\n"
        "        import workflow_lib.b\n        from . import c\n        from .. import a\n"
    )
    assert imported_modules(src, "workflow_lib.sub.d", False, known) == {
        "workflow_lib.a",
        "workflow_lib.b",
        "workflow_lib.sub.c",
    }


def test_cycles_are_found_and_named():
    g = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a", "p.e"}, "p.e": {"p.d"}, "p.f": set()}
    assert cycles(g) == [["p.a", "p.b", "p.c", "p.a"], ["p.d", "p.e", "p.d"]]
    # two cycles through one module (the shape of config/search_space/augment/keys at a1554d3): both named
    g = {"p.c": {"p.s", "p.a"}, "p.s": {"p.c"}, "p.a": {"p.k"}, "p.k": {"p.s"}}
    assert cycles(g) == [["p.a", "p.k", "p.s", "p.c", "p.a"], ["p.c", "p.s", "p.c"]]
    assert cycles({"p.a": {"p.b"}, "p.b": set()}) == []


# The packages, lowest first: a module imports only from its own package and the layers below it.
LAYERS = [
    {"symptoms", "provenance"},
    {"config"},
    {"persistence"},
    {"devices", "data"},
    {"learning"},
    {"tracking"},
    {"search", "shipping"},
    {"pipeline"},
]
# The one upward edge: the replayer logs a spooled model with the shipped model's code (inside a
# function; it loads MLflow). shipping in turn uses the tracker, so the two packages stay apart.
UPWARD = {("workflow_lib.tracking.replay", "workflow_lib.shipping.mlflow_model")}


def _layer(module: str) -> int:
    name = module.split(".")[1]
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_packages_form_layers(repo):
    graph = import_graph(repo)
    upward = sorted(
        (a, b)
        for a, bs in graph.items()
        if a != "workflow_lib"
        for b in bs
        if b != "workflow_lib" and _layer(b) > _layer(a) and (a, b) not in UPWARD
    )
    assert upward == [], "imports from a higher package layer:\n" + "\n".join(f"  {a} -> {b}" for a, b in upward)
    same_layer = sorted(
        (a, b)
        for a, bs in graph.items()
        if a != "workflow_lib"
        for b in bs
        if b != "workflow_lib" and _layer(a) == _layer(b) and a.split(".")[1] != b.split(".")[1]
    )
    assert same_layer == [], same_layer  # packages of one layer are independent
    assert all(a in graph and b in graph[a] for a, b in UPWARD)  # the exception still exists (else drop it)
