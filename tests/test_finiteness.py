"""One check finds NaN and infinity in weights, wherever diffrep trains, caches, checkpoints or loads them."""

from pathlib import Path

import pytest
import torch

import diffrep
from diffrep._engine.finiteness import non_finite_tensors

PACKAGE = Path(diffrep.__file__).parent


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_names_each_floating_tensor_holding_nan_or_infinity_in_order(dtype, bad):
    tensors = {"fine": torch.ones(3, dtype=dtype), "first": torch.tensor([0.0, bad], dtype=dtype),
               "steps": torch.tensor([7]), "second": torch.full((2, 2), bad, dtype=dtype)}
    assert non_finite_tensors(tensors.items()) == ["first", "second"]


def test_finite_and_integer_tensors_pass():
    assert non_finite_tensors({"w": torch.zeros(4), "n": torch.tensor([2**62])}.items()) == []


def test_no_other_module_checks_tensors_for_finiteness_on_its_own():
    own_checks = [
        f"{path.relative_to(PACKAGE)}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text().splitlines()
        if path.name != "finiteness.py" and "isfinite" in line and "is_floating_point" in line
    ]
    assert own_checks == []
