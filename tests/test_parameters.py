"""Every public estimator declares its parameters to sklearn, and a bad value names the parameter."""

import pytest

from diffrep._engine.sklearn_compat import InvalidParameterError
from diffrep import (
    DiffusionFeaturizer,
    NoiseEnsembleClassifier,
    NoiseEnsembleRegressor,
    SubspaceClassifier,
    corrupt_labels,
    label_noise_study,
    make_molrg,
    representation_curve,
)

ESTIMATORS = [DiffusionFeaturizer, NoiseEnsembleClassifier, NoiseEnsembleRegressor, SubspaceClassifier]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_parameter_has_a_constraint(estimator):
    assert set(estimator._parameter_constraints) == set(estimator().get_params())


@pytest.mark.parametrize(
    ("estimator", "param", "value"),
    [
        (DiffusionFeaturizer, "pooling", "sum"),
        (DiffusionFeaturizer, "n_noise_draws", True),  # a bool is not a count
        (DiffusionFeaturizer, "memory", 3),
        (NoiseEnsembleClassifier, "aggregation", "median"),
        (NoiseEnsembleRegressor, "n_neighbors", -1),
        (SubspaceClassifier, "n_components", 0),
    ],
)
def test_a_bad_parameter_raises_invalid_parameter_error_naming_it(digits_small, estimator, param, value):
    X, y = digits_small
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {estimator.__name__}"):
        estimator(**{param: value}).fit(X, y)


@pytest.mark.parametrize(
    ("function", "kwargs", "param"),
    [
        (corrupt_labels, dict(y=[0, 1, 0, 1], rate=2.0), "rate"),
        (label_noise_study, dict(estimators={"a": SubspaceClassifier()}, X=[[0.0]], y=[0], n_repeats=0), "n_repeats"),
        (representation_curve, dict(featurizer=DiffusionFeaturizer(), X=[[0.0]], y=[0], timesteps=(1,), cv=1), "cv"),
        (make_molrg, dict(n_samples=0, n_features=4, n_classes=2, rank=1, delta=0.1), "n_samples"),
    ],
)
def test_public_functions_validate_their_parameters(function, kwargs, param):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {function.__name__}"):
        function(**kwargs)
