"""Layers of ``workflows/`` import in one direction (issue 12); docs/architecture.md draws the same picture.

Every ``import`` of every module under ``workflows/`` is read with ``ast`` — those inside functions too, so a lazy
import cannot hide a cycle — and checked against ``ALLOWED``:

    spec                        Argo's own YAML: schema, linter, ``depends`` grammar, submit-from semantics
    steps, gitops               what runs in the pods, and the GitOps promotion it calls
    pipelines                   the Hera pipelines (they name the steps)
    compiler      engine        pipelines -> Argo YAML;  Argo YAML -> runs, the Argo Server API (siblings: never
                                each other)
    client                      the Argo Server client: builds what ``submit`` sends (compiler) and sends it
    CLI modules                 ``cli.py``, ``run_cli.py``, ``_cli_*.py`` in any package: the top, may import anything

It also fails on two modules that import each other (through any chain), and on an import inside a function in the
engine or the spec layer without a ``#`` comment saying why (those left are for start-up speed, not for cycles).

The engine's expression language (``workflows.engine.expressions``) stays in the engine: only the engine evaluates
expressions (the linter checks references by pattern, not by evaluating them).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = "CLI"

# layer -> the layers it may import (its own is always allowed)
ALLOWED: dict[str, frozenset[str]] = {
    "spec": frozenset(),
    "steps": frozenset({"spec"}),
    "gitops": frozenset({"spec", "steps"}),
    "pipelines": frozenset({"spec", "steps"}),
    "compiler": frozenset({"spec", "pipelines", "steps"}),
    "engine": frozenset({"spec"}),
    "client": frozenset({"spec", "compiler", "pipelines", "steps"}),
    "workflows": frozenset(),
}
# (importer, imported module) -> why it is tolerated for now; each must still exist, so a fixed one is removed here.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("workflows.steps.promote", "workflows.gitops.promotion"): (
        "the promote step publishes through GitOps, whose promotion reads the registry through steps._registry: "
        "a steps <-> gitops cycle outside issue 12's layering of spec/compiler/engine/client"
    ),
}
# what the lower layers may use from the rest of the project: the one config, the one errors module, contracts
_CORE = ("driftloop.config", "driftloop.errors", "driftloop.registry_contract")
_LOW_LAYERS = frozenset({"spec", "compiler", "engine"})


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((ROOT / "workflows").rglob("*.py"))}


@functools.cache
def _imported(module: str, path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import statement, at any depth; ``from a import b`` names ``a.b``
    when ``b`` is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((candidate if candidate in _modules() else base, node.lineno))
    return sorted(found, key=lambda item: item[1])


def layer_of(module: str) -> str:
    """The layer a module belongs to: its package under ``workflows``, or CLI for the command modules."""
    last = module.rpartition(".")[2]
    if last in {"cli", "run_cli"} or last.startswith("_cli_"):
        return CLI
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _outside_core(target: str) -> bool:
    """A project module above the lower layers (``driftloop`` itself only gives ``__version__``)."""
    top = target.split(".")[0]
    return top in {"driftloop", "monitors", "features"} and target != "driftloop" and not target.startswith(_CORE)


def violations() -> list[str]:
    """Every import under ``workflows/`` that goes against ``ALLOWED`` (or into the project's upper parts)."""
    found: list[str] = []
    for module, path in _modules().items():
        layer = layer_of(module)
        if layer == CLI:
            continue
        if layer not in ALLOWED:
            found.append(f"{path.relative_to(ROOT)}: a new package {layer!r}: place it in ALLOWED (and the docs)")
            continue
        for target, line in _imported(module, path):
            if (module, target) in KNOWN_EXCEPTIONS:
                continue
            where = f"{path.relative_to(ROOT)}:{line}: {module} -> {target}"
            if target.startswith("workflows"):
                other = layer_of(target)
                if other != layer and other not in ALLOWED[layer]:
                    found.append(f"{where} ({layer} may not import {other})")
            elif layer in _LOW_LAYERS and _outside_core(target):
                found.append(f"{where} ({layer} may use only {', '.join(_CORE)} of the project)")
    return sorted(set(found))


def test_every_import_under_workflows_goes_down_the_layers() -> None:
    assert violations() == []


def test_the_allowed_layers_form_no_cycle() -> None:
    order: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:
        ready = [layer for layer, below in remaining.items() if below <= set(order)]
        assert ready, f"cycle among {sorted(remaining)}"
        order += ready
        for layer in ready:
            del remaining[layer]
    assert order.index("spec") == 0 and ALLOWED["engine"] == {"spec"}


def test_each_known_exception_still_exists() -> None:
    """A tolerated import that was fixed must leave ``KNOWN_EXCEPTIONS``, or it would silently be allowed again."""
    present = {(module, target) for module, path in _modules().items() for target, _ in _imported(module, path)}
    assert set(KNOWN_EXCEPTIONS) <= present, set(KNOWN_EXCEPTIONS) - present


def _module_cycles() -> list[list[str]]:
    """Groups of ``workflows`` modules that import each other, directly or through others (lazy imports count)."""
    graph = {
        module: {target for target, _ in _imported(module, path) if target in _modules() and target != module}
        for module, path in _modules().items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_two_modules_under_workflows_import_each_other() -> None:
    """The engine's walkers (``_execute`` -> ``_dag``/``_steps``/``_children``, through ``_protocol``) included."""
    assert _module_cycles() == []


def _imports_project_code(node: ast.AST) -> bool:
    """An import (or ``import_module`` call) of a ``workflows`` module: the only kind that can break a cycle.
    A dynamic ``import_module(name)`` counts too, since it may be one."""
    if isinstance(node, ast.Import):
        return any(alias.name.startswith("workflows") for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").startswith("workflows")
    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
        first = node.args[0]
        return not (isinstance(first, ast.Constant) and not str(first.value).startswith("workflows"))
    return False


def _unexplained_lazy_imports(path: Path) -> list[str]:
    """Imports of ``workflows`` modules inside functions (and ``importlib.import_module`` calls) with no ``#``
    comment saying why, on the line itself or just above its block of imports. (Third-party and standard-library
    modules imported late cannot hide a cycle of ours, so they need no reason here.)"""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found: list[str] = []
    for function in ast.walk(ast.parse(text)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not _imports_project_code(node):
                continue
            lineno = getattr(node, "lineno", 0)
            above = lineno - 2
            while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                above -= 1
            if "#" not in lines[lineno - 1] and not (above >= 0 and lines[above].strip().startswith("#")):
                found.append(f"{label}:{lineno}: {lines[lineno - 1].strip()}")
    return list(dict.fromkeys(found))  # a nested function is walked twice


def test_the_engine_and_the_spec_layer_hold_no_lazy_import_without_a_reason() -> None:
    """A lazy import used to hold the engine's walkers together (``_execute`` <-> ``_dag``/``_steps``); those
    are gone. The ones left are for start-up speed, and say so."""
    paths = [
        *sorted((ROOT / "workflows" / "engine").rglob("*.py")),
        *sorted((ROOT / "workflows" / "spec").rglob("*.py")),
    ]
    assert [line for path in paths for line in _unexplained_lazy_imports(path)] == []


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    """The proof is only as good as the parser: a lazy and a relative import must both be found."""
    source = tmp_path / "probe.py"
    source.write_text(
        "def f():\n    from workflows.engine import _dag\nfrom . import depends\n\n\n"
        "def g():\n    # start-up speed\n    import workflows.spec.lint\n    from workflows.spec import schema\n"
        "    import json\n\ndef h():\n    importlib.import_module(name)\n"
    )
    found = [target for target, _ in _imported("workflows.spec.probe", source)]
    assert found == [
        "workflows.engine._dag",
        "workflows.spec.depends",
        "workflows.spec.lint",
        "workflows.spec.schema",
        "json",
    ]
    assert layer_of("workflows.engine._cli_runs") == CLI and layer_of("workflows.engine._dag") == "engine"
    assert _unexplained_lazy_imports(source) == [
        "probe.py:2: from workflows.engine import _dag",
        "probe.py:13: importlib.import_module(name)",
    ]
