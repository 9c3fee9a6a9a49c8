"""Every public class and function has a numpydoc docstring that matches its signature,
and every estimator documents each fitted attribute it sets."""

import importlib
import inspect
import pkgutil

import pytest
from sklearn.datasets import load_digits

import diffrep

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is in the test extra")
from numpydoc.docscrape import ClassDoc  # noqa: E402

# Missing docstring, or Parameters that do not match the signature.
SIGNATURE_ERRORS = {"GL08", "PR01", "PR02", "PR10"}
SKIPPED_MODULES = {"diffrep.__main__"}


def _public_objects():
    names = set()
    for module_info in pkgutil.walk_packages(diffrep.__path__, "diffrep."):
        if module_info.name in SKIPPED_MODULES or any(part.startswith("_") for part in module_info.name.split(".")):
            continue
        module = importlib.import_module(module_info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                names.add(f"{module.__name__}.{name}")
                if inspect.isclass(obj):
                    names.update(
                        f"{module.__name__}.{name}.{member}"
                        for member, value in vars(obj).items()
                        if not member.startswith("_") and inspect.isfunction(value)
                    )
    return sorted(names)


PUBLIC = _public_objects()


def test_the_walk_finds_the_public_api():
    assert "diffrep.featurizer.DiffusionFeaturizer" in PUBLIC
    assert "diffrep.featurizer.DiffusionFeaturizer.transform" in PUBLIC
    assert len(PUBLIC) > 40


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_matches_signature(name):
    result = numpydoc_validate.validate(name)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in SIGNATURE_ERRORS]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def _fitted_estimators():
    from sklearn.frozen import FrozenEstimator

    from diffrep import (
        DiffusionFeaturizer,
        MoLRGDenoiser,
        NoiseEnsembleClassifier,
        NoiseEnsembleRegressor,
        SubspaceClassifier,
        make_molrg,
    )

    X, y = load_digits(return_X_y=True)
    X, y = X[:100], y[:100]
    tiny = dict(model_width=8, max_steps=2, device="cpu", random_state=0)
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **tiny).fit(X)
    ensemble = NoiseEnsembleClassifier(featurizer=FrozenEstimator(featurizer), timesteps=(10, 50), cv=2).fit(X, y)
    regressor = NoiseEnsembleRegressor(featurizer=FrozenEstimator(featurizer), timesteps=(10, 50), cv=2)
    regressor.fit(X, y.astype(float))
    Xm, ym, bases = make_molrg(60, 6, 2, 2, 0.2, random_state=0, return_bases=True)
    theory = DiffusionFeaturizer(denoiser=MoLRGDenoiser(bases, 0.2), device="cpu").fit(Xm)
    return [featurizer, ensemble, regressor, SubspaceClassifier(n_components=2).fit(Xm, ym), theory]


@pytest.mark.parametrize("estimator", _fitted_estimators(), ids=lambda est: type(est).__name__)
def test_every_fitted_attribute_is_documented(estimator):
    documented = {item.name.split(":")[0].strip() for item in ClassDoc(type(estimator))["Attributes"]}
    documented = {name for entry in documented for name in entry.replace(" ", "").split(",")}
    fitted = {name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")}
    assert fitted, "the estimator should be fitted"
    assert fitted <= documented, f"undocumented fitted attributes: {sorted(fitted - documented)}"
