"""The package layout holds: no import cycle, imports only go down the stages, no production module imports
the test fixtures, and the top level holds only the command, the fixtures and the stage packages.

Read from the source with ``ast`` (imports inside functions count), so the check needs no import to run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "styleboost"

# Lower stages first; a module may import its own stage and the stages before it. Stages that share a
# level (training, generation, styles) do not import each other. The style encoder's trainer reuses the
# training stage's accelerator, checkpoints and run folder; metrics wrap the style encoder.
LEVELS = [
    {"core"}, {"sd"}, {"training", "generation", "styles"}, {"style_encoder"}, {"metrics"}, {"transfer"},
    {"evaluation"}, {"curation"}, {"toyworld"}, {"experiments"}, {"cli"},
]
TOP_LEVEL = {"__init__.py", "cli.py", "testing.py", "py.typed"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def typing_only(tree: ast.Module) -> set[ast.AST]:
    """The nodes inside ``if TYPE_CHECKING:`` blocks: imports for annotations, never run."""
    blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and ast.unparse(n.test).endswith("TYPE_CHECKING")]
    return {inner for block in blocks for stmt in block.body for inner in ast.walk(stmt)}


def imported(path: Path, known: set[str]) -> set[str]:
    """The styleboost modules ``path`` imports when it runs, anywhere in the file (inside functions too)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    skipped = typing_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("styleboost"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("styleboost"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path, set(mods)) - {name} for name, path in mods.items()}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def level(module: str) -> int | None:
    name = stage(module)
    return next((i for i, group in enumerate(LEVELS) if name in group), None)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_no_production_module_imports_the_test_fixtures():
    users = sorted(m for m, deps in graph().items() if "styleboost.testing" in deps and m != "styleboost.testing")
    assert users == []


def test_imports_only_go_down_the_stages():
    upward = []
    for module, deps in graph().items():
        if module in ("styleboost", "styleboost.testing"):
            continue
        for dep in deps:
            if dep == "styleboost" or stage(dep) == stage(module):
                continue
            if level(dep) is None or level(module) is None or level(dep) >= level(module):
                upward.append(f"{module} -> {dep}")
    assert sorted(upward) == []


def lazy_internal_imports(path: Path) -> list[ast.stmt]:
    """The styleboost imports made inside functions of ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [node for f in functions for node in ast.walk(f)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("styleboost")
            or isinstance(node, ast.Import) and any(a.name.startswith("styleboost") for a in node.names)]


def test_a_lazy_internal_import_says_what_it_defers():
    """An import inside a function is there only to defer a heavy third-party import: a comment says which."""
    unexplained = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        for node in lazy_internal_imports(path):
            nearby = lines[node.lineno - 2 : node.end_lineno]
            if not any("#" in line for line in nearby):
                unexplained.append(f"{name}:{node.lineno}")
    assert unexplained == []


def test_top_level_holds_the_command_the_fixtures_and_stage_packages():
    stages = set().union(*LEVELS) - {"cli"}
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    assert entries - TOP_LEVEL == stages
