"""The project's one rule for imports inside functions, stated here and nowhere else.

Snakemake imports workflow_lib at every start-up (the Snakefile, each job's script), and
``redsm5-predict --help`` should answer at once; so torch, transformers, MLflow, Optuna and the other
heavy libraries (HEAVY_LIBRARIES below) are imported inside the functions that use them: an import in
a function body means "here, not at the top: keeps start-up fast", and carries no comment saying so.
Everything else is imported at the top of its module, where a reader sees a module's dependencies.
This test holds the package to that:

- a function-level import must pull in a heavy library, directly or through a project module that
  imports one at its top (the same reading as tests/unit/test_import_graph.py, from the source);
- an import inside ``try`` is an optional dependency and is exempt.

The developer benchmarks (devbench/) are outside: they time imports on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY_LIBRARIES = {
    "torch",
    "transformers",
    "mlflow",
    "optuna",
    "textattack",
    "sklearn",
    "matplotlib",
    "pandas",
    "peft",
    "torchcrf",
    "datasets",
    "nltk",
    "scipy",
    "psycopg2",
    "flair",
    "numpy",
    "safetensors",
    "tokenizers",
    "aiohttp",
    "sqlalchemy",
    "huggingface_hub",
}


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of workflow_lib."""
    out = {}
    for path in sorted((root / "workflow_lib").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.module == "workflow_lib":
        return [f"workflow_lib.{a.name}" for a in node.names]
    return [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]


def _top_level(tree: ast.Module) -> list[str]:
    return [n for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for n in _names(node)]


def heavy_modules(trees: dict[str, ast.Module]) -> set[str]:
    """Project modules whose import loads a heavy library (at their top, directly or through each other)."""
    heavy: set[str] = set()
    changed = True
    while changed:
        changed = False
        for module, tree in trees.items():
            if module not in heavy and any(n.split(".")[0] in HEAVY_LIBRARIES or n in heavy for n in _top_level(tree)):
                heavy.add(module)
                changed = True
    return heavy


def function_imports(tree: ast.Module):
    """(import node, inside try) for every import in a function body."""
    found = []

    def visit(node, in_function: bool, in_try: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, True, False)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function:
                    found.append((child, in_try))
            else:
                visit(child, in_function, in_try or isinstance(child, ast.Try))

    visit(tree, False, False)
    return found


def _problems() -> list[str]:
    files = module_files(REPO)
    sources = {m: p.read_text(encoding="utf-8") for m, p in files.items()}
    trees = {m: ast.parse(s) for m, s in sources.items()}
    heavy = heavy_modules(trees)
    problems = []
    for module, tree in trees.items():
        lines = sources[module].splitlines()
        imports = function_imports(tree)
        for node, in_try in imports:
            if in_try:
                continue
            where = f"{files[module].relative_to(REPO)}:{node.lineno}"
            names = _names(node)
            if not any(n.split(".")[0] in HEAVY_LIBRARIES or n in heavy for n in names):
                problems.append(
                    f"{where}: {lines[node.lineno - 1].strip()!r} imports nothing heavy; "
                    "move it to the top of the module"
                )
    return problems


def test_imports_inside_functions_are_heavy():
    problems = _problems()
    assert not problems, "\n".join(problems)


def test_the_reading_finds_heavy_modules_and_light_ones():
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in module_files(REPO).items()}
    heavy = heavy_modules(trees)
    assert "workflow_lib.learning.training" in heavy  # torch at its top
    assert "workflow_lib.shipping.mlflow_model" in heavy  # mlflow at its top
    assert "workflow_lib.config.load" not in heavy  # the Snakefile's import stays light
    assert "workflow_lib.pipeline.plan" not in heavy
    assert "workflow_lib.pipeline.stages" not in heavy  # every job's script imports it


def test_a_light_import_in_a_function_is_reported():
    tree = ast.parse(
        "import json\n\ndef f():\n    import os\n    from workflow_lib.symptoms import SYMPTOMS\n    import torch\n"
    )
    found = [(node.lineno, in_try) for node, in_try in function_imports(tree)]
    assert found == [(4, False), (5, False), (6, False)]
    assert heavy_modules(
        {"m": ast.parse("import torch\n"), "n": ast.parse("import m\n"), "o": ast.parse("def f():\n    import torch\n")}
    ) == {"m", "n"}
