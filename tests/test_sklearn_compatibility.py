"""scikit-learn's own estimator checks, run over a tiny DiffusionFeaturizer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from diffrep import DiffusionFeaturizer

from .helpers import TINY

EXPECTED_FAILURES = {}


@parametrize_with_checks(
    [DiffusionFeaturizer(denoiser="mlp", timesteps=(10, 20), **TINY)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
