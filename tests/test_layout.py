"""The layout of DESIGN.md, read from the source: one package per role, imports in its direction.

Every import statement of the project's packages (and of bench/) is read with ast: no
cycle, no import of a project module inside a function, no arrow against the layout table
(nothing imports the CLI; models and transforms never import flows; models never import
transforms; the kernels import no other package of the project; storage imports neither
the flows nor the models), and a lazy third-party import carries a comment saying why.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "models", "transforms")
PROJECT = (*PACKAGES, "bench")
KERNELS = "models.kernels"

#: role → the roles it may import (DESIGN.md's layout table); a role is the longest prefix.
ALLOWED = {
    "flows": {"flows", "flows.stages", "flows.storage", "models", KERNELS, "transforms"},
    "flows.stages": {"flows", "flows.stages", "flows.storage", "models", KERNELS, "transforms"},
    "flows.storage": {"flows.storage", KERNELS, "transforms"},
    "flows.analyst": {
        "flows",
        "flows.stages",
        "flows.storage",
        "flows.analyst",
        "models",
        KERNELS,
        "transforms",
    },
    "flows.cli": {
        "flows",
        "flows.stages",
        "flows.storage",
        "flows.analyst",
        "flows.cli",
        "models",
        KERNELS,
        "transforms",
    },
    "models": {"models", KERNELS},
    KERNELS: {KERNELS},
    "transforms": {"transforms", KERNELS},
    "bench": {"bench", *PACKAGES, "flows.stages", "flows.storage", "flows.analyst", KERNELS},
}
ROLES = sorted(ALLOWED, key=len, reverse=True)


@dataclass(frozen=True)
class Import:
    """One import statement: where it is, what it names, whether it sits in a function."""

    module: str
    line: int
    target: str
    in_function: bool
    commented: bool


def module_name(path: Path) -> str:
    """Return the dotted module name of a source file under ROOT."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    """Return every Python file of the project's packages and bench/."""
    return sorted(p for top in PROJECT for p in (ROOT / top).rglob("*.py"))


MODULES = {module_name(p) for p in source_files()}


def resolve(module: str, name: str | None) -> str:
    """Return the project module an import names (`from a import b`: a.b when it is one)."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module


def _in_functions(tree: ast.AST) -> set[int]:
    """Return the ids of the import nodes inside a function body."""
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return inner


def imports_of(path: Path) -> list[Import]:
    """Return every import statement of one file, with the module each names."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text)
    inner = _in_functions(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [resolve(node.module, alias.name) for alias in node.names]
        else:
            continue
        line = lines[node.lineno - 1]
        commented = "#" in line or lines[node.lineno - 2].strip().startswith("#")
        found += [
            Import(module_name(path), node.lineno, t, id(node) in inner, commented) for t in targets
        ]
    return found


#: The CLI names its handlers ("module:function"): those are imports too, done on dispatch.
HANDLER = re.compile(r'"(flows\.cli\.[a-z_]+):([a-z_]+)"')


def handler_references() -> list[tuple[str, str]]:
    """Return every (module, function) the CLI names: its handlers and its preflight."""
    texts = [
        (ROOT / "flows" / "cli" / f).read_text(encoding="utf-8") for f in ("parsers.py", "main.py")
    ]
    return [ref for text in texts for ref in HANDLER.findall(text)]


def project_edges() -> dict[str, set[str]]:
    """Return module → the project modules it imports (statements and CLI handlers)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for path in source_files():
        for imp in imports_of(path):
            if imp.target.split(".")[0] in PROJECT:
                edges[imp.module].add(imp.target)
    edges["flows.cli.main"] |= {module for module, _ in handler_references()}
    return edges


def role(module: str) -> str:
    """Return the role (layout-table row) of a module: its longest listed prefix."""
    return next(r for r in ROLES if module == r or module.startswith(r + "."))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycle():
    assert find_cycle(project_edges()) is None, " -> ".join(find_cycle(project_edges()) or [])


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_follows_the_layout_table():
    wrong = [
        f"{module} ({role(module)}) imports {target} ({role(target)})"
        for module, targets in project_edges().items()
        for target in targets
        if role(target) not in ALLOWED[role(module)]
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_nothing_imports_the_cli():
    importers = {
        module
        for module, targets in project_edges().items()
        for target in targets
        if role(target) == "flows.cli" and role(module) != "flows.cli"
    }
    assert not importers


def test_no_project_module_is_imported_inside_a_function():
    inner = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for path in source_files()
        for imp in imports_of(path)
        if imp.in_function and imp.target.split(".")[0] in PROJECT
    ]
    assert not inner, "\n".join(inner)


def test_every_lazy_third_party_import_says_why():
    silent = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for path in source_files()
        for imp in imports_of(path)
        if imp.in_function and not imp.commented
    ]
    assert not silent, "a lazy import needs a one-line comment:\n" + "\n".join(silent)


@pytest.mark.parametrize(("module", "function"), handler_references())
def test_every_cli_handler_exists(module, function):
    assert callable(getattr(importlib.import_module(module), function))


def test_every_package_says_its_role():
    packages = [p for top in PACKAGES for p in (ROOT / top).rglob("__init__.py")]
    assert packages
    silent = [
        str(p.relative_to(ROOT))
        for p in packages
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert not silent
