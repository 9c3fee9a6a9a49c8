"""Every warning diffrep raises has a class of its own, so a user can filter exactly that one."""

import ast
import inspect
import warnings
from pathlib import Path

import pytest
import torch

import diffrep
from diffrep import exceptions
from diffrep._engine.device import available_or_cpu
from diffrep.exceptions import CacheWarning, CheckpointWarning, CostWarning, DeviceWarning, DiffrepWarning

PACKAGE = Path(diffrep.__file__).parent
SPECIFIC = [CacheWarning, CheckpointWarning, CostWarning, DeviceWarning]


def _warn_calls():
    """``(file:line, category expression)`` of every ``warnings.warn`` call in diffrep."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "warnings.warn":
                category = node.args[1] if len(node.args) > 1 else next(
                    (keyword.value for keyword in node.keywords if keyword.arg == "category"), None
                )
                yield f"{path.relative_to(PACKAGE)}:{node.lineno}", category and ast.unparse(category)


def test_every_warning_diffrep_raises_is_one_of_its_classes():
    calls = list(_warn_calls())
    assert len(calls) >= 7  # the cache (2), checkpoints (2), device (2), cost notice and the memory seed
    offences = [f"{where}: {category}" for where, category in calls if category not in exceptions.__all__]
    assert offences == []


@pytest.mark.parametrize("category", SPECIFIC, ids=lambda cls: cls.__name__)
def test_each_class_is_a_diffrep_and_a_user_warning_documented_for_users(category):
    assert issubclass(category, DiffrepWarning) and issubclass(DiffrepWarning, UserWarning)
    assert inspect.getdoc(category)
    assert f"diffrep.exceptions.{category.__name__}" in (PACKAGE.parent / "docs" / "api.rst").read_text()


def _fall_back_from_a_missing_gpu():
    return available_or_cpu(torch.device("cuda"))


needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback needs a machine without CUDA")


@needs_no_cuda
def test_a_missing_fitted_device_warns_with_device_warning():
    with pytest.warns(DeviceWarning, match="not available here; using the CPU"):
        assert _fall_back_from_a_missing_gpu() == torch.device("cpu")


@needs_no_cuda
@pytest.mark.parametrize(
    ("ignored", "silenced"),
    [(DeviceWarning, True), (DiffrepWarning, True), (UserWarning, True),
     (CacheWarning, False), (CheckpointWarning, False), (CostWarning, False)],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_filtering_the_class_or_a_parent_silences_it_and_another_class_does_not(ignored, silenced):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ignored)
        if silenced:
            _fall_back_from_a_missing_gpu()
        else:
            with pytest.raises(DeviceWarning):
                _fall_back_from_a_missing_gpu()
