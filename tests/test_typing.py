"""The public API carries type hints: every parameter of the estimators and public functions is annotated.

That the hints are consistent is mypy's job (scripts/test.sh runs it, with the settings in pyproject.toml).
"""

import importlib
import inspect

import pytest

PUBLIC_MODULES = [
    "diffrep.baselines", "diffrep.curves", "diffrep.datasets", "diffrep.ensemble", "diffrep.featurizer",
    "diffrep.generalization", "diffrep.images", "diffrep.label_noise", "diffrep.plotting", "diffrep.probes",
    "diffrep.schedules", "diffrep.theory.denoisers", "diffrep.theory.metrics", "diffrep.theory.model",
]


def _public_signatures():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj
            elif inspect.isclass(obj) and "__init__" in vars(obj):
                yield f"{module_name}.{name}.__init__", obj.__init__


SIGNATURES = dict(_public_signatures())


def test_the_walk_finds_the_estimators_and_the_studies():
    assert {"diffrep.featurizer.DiffusionFeaturizer.__init__", "diffrep.curves.representation_curve"} <= set(SIGNATURES)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_every_parameter_is_annotated(name):
    parameters = inspect.signature(SIGNATURES[name]).parameters.values()
    bare = [p.name for p in parameters if p.name != "self" and p.annotation is inspect.Parameter.empty]
    assert bare == [], f"{name} has parameters without a type hint"
