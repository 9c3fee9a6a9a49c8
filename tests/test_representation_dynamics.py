"""The paper's dynamics on real data: the default denoiser's digits curve rises, peaks and falls to chance.

Slow (a default training of a few CPU minutes): run with ``-m slow``.
"""

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from diffrep import DiffusionFeaturizer
from diffrep.app.demo import DEMO_TIMESTEPS
from diffrep._engine.probes import extract_blocks
from diffrep.probes import default_probe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def curve():
    """Test accuracy of the default probe at each demo timestep, default featurizer on digits."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), random_state=0).fit(X_train)
    train_blocks = extract_blocks(featurizer, X_train, DEMO_TIMESTEPS)
    test_blocks = extract_blocks(featurizer, X_test, DEMO_TIMESTEPS)
    return {
        t: default_probe().fit(train, y_train).score(test, y_test)
        for t, train, test in zip(DEMO_TIMESTEPS, train_blocks, test_blocks)
    }


def test_the_noisiest_timestep_is_near_chance(curve):
    assert curve[999] <= 0.35


def test_the_curve_peaks_inside_the_grid_well_above_the_noisy_end(curve):
    peak = max(curve, key=curve.get)
    assert DEMO_TIMESTEPS[0] < peak < DEMO_TIMESTEPS[-1]
    assert curve[peak] - curve[999] >= 0.4
