"""scikit-learn's private API reaches diffrep through one module, and its loss is reported by name."""

import ast
import re
from pathlib import Path

import pytest
import sklearn
import sklearn.base
from packaging.requirements import Requirement
from packaging.version import Version

import diffrep
from diffrep._engine import sklearn_compat
from diffrep._engine.sklearn_compat import PRIVATE_NAMES, SUPPORTED_SKLEARN, private_name

PACKAGE = Path(diffrep.__file__).parent


@pytest.mark.parametrize("name", sorted(PRIVATE_NAMES))
def test_every_private_name_diffrep_uses_exists_in_the_installed_sklearn(name):
    module, private = PRIVATE_NAMES[name]
    assert getattr(sklearn_compat, name) is private_name(module, private)


def test_a_vanished_private_name_is_named_with_the_supported_range(monkeypatch):
    monkeypatch.delattr(sklearn.base, "_fit_context")
    message = re.escape(f"scikit-learn's sklearn.base._fit_context, which scikit-learn {sklearn.__version__}")
    with pytest.raises(ImportError, match=message + r".*scikit-learn>=1\.6,<1\.10"):
        private_name("sklearn.base", "_fit_context")


def test_a_vanished_private_module_is_named():
    with pytest.raises(ImportError, match=r"sklearn\.utils\._gone\.helper"):
        private_name("sklearn.utils._gone", "helper")


def test_no_module_of_diffrep_imports_sklearn_private_api_but_the_compat_module():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "sklearn_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                names = [alias.name for alias in node.names]
                if "._" in node.module or any(name.startswith("_") for name in names):
                    offences.append(f"{path.relative_to(PACKAGE)}: from {node.module} import {', '.join(names)}")
    assert offences == []


def test_pyproject_declares_the_range_the_compat_module_supports_and_the_installed_version_is_in_it():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    declared = re.search(r'"(scikit-learn[^"]*)"', pyproject).group(1)
    requirement = Requirement(declared)
    assert str(requirement.specifier) == str(Requirement("scikit-learn" + SUPPORTED_SKLEARN).specifier)
    assert Version(sklearn.__version__) in requirement.specifier
