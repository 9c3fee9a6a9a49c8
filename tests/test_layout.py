"""The package's layers: no import cycle, and no module reaching for a private name of another layer."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import diffrep

PACKAGE = Path(diffrep.__file__).parent
MODULES = sorted(
    ".".join(("diffrep", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if path.name != "__main__.py"
)


def _layer(module):
    """``diffrep`` for the top level, else the subpackage (``diffrep._engine``, ``diffrep.theory`` ...)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else "diffrep"


def _imports(module):
    """``(imported module, names)`` of every ``from ... import`` in the module's source, resolved."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            if base.startswith("diffrep"):
                yield base, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("diffrep"):
                    yield alias.name, []


def _graph():
    graph = {}
    for module in MODULES:
        targets = set()
        for base, names in _imports(module):
            for name in names or [None]:
                target = f"{base}.{name}" if name and f"{base}.{name}" in MODULES else base
                targets.add(target)
        graph[module] = targets & set(MODULES) - {module}
    return graph


def test_no_import_cycles():
    graph, done, path = _graph(), set(), []

    def visit(module):
        if module in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(module) :] + [module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(graph[module]):
            if target != "diffrep" and not module.startswith(target + "."):  # a package's own __init__
                visit(target)
        path.pop()
        done.add(module)

    for module in MODULES:
        visit(module)


def test_no_module_imports_a_private_name_of_another_layer():
    offences = [
        f"{module} imports {base}.{name}"
        for module in MODULES
        for base, names in _imports(module)
        for name in names
        if name.startswith("_") and name != "__version__" and _layer(base) != _layer(module)
    ]
    assert offences == []


@pytest.mark.parametrize("order", [MODULES, MODULES[::-1]], ids=["forward", "backward"])
def test_every_module_imports_in_a_fresh_interpreter_in_any_order(order):
    code = "import importlib\nfor name in %r:\n    importlib.import_module(name)" % (order,)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_public_name_is_importable_from_the_top():
    for name in diffrep.__all__:
        assert getattr(diffrep, name).__name__ == name
