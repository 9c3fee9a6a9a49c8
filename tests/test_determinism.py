"""Reproducibility: features come from random_state alone, and fit touches nothing it was given."""

import copy
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone

from diffrep import DiffusionFeaturizer
from diffrep.denoisers.mlp import MLPDenoiser

from .helpers import TINY, assert_equal_to_float32_rounding


def test_same_random_state_gives_identical_features(fitted, images):
    again = clone(fitted).fit(images)
    np.testing.assert_array_equal(again.transform(images), fitted.transform(images))
    np.testing.assert_array_equal(again.loss_curve_, fitted.loss_curve_)


def test_different_random_state_gives_different_features(fitted, images):
    other = clone(fitted).set_params(random_state=1).fit(images)
    assert not np.allclose(other.transform(images), fitted.transform(images))


def test_transform_ignores_the_global_random_generators(fitted, images):
    before = fitted.transform(images)
    torch.randn(100)  # advance the global generators a noise draw would read from
    np.random.rand(100)
    np.testing.assert_array_equal(fitted.transform(images), before)


def test_transform_does_not_depend_on_the_batch_size(fitted, images):
    reference = fitted.transform(images)
    for batch_size in (1, 7):
        smaller = copy.deepcopy(fitted).set_params(batch_size=batch_size)
        assert_equal_to_float32_rounding(smaller.transform(images), reference)


def test_transform_does_not_depend_on_sample_order(fitted, images):
    order = np.random.default_rng(0).permutation(len(images))
    assert_equal_to_float32_rounding(fitted.transform(images[order]), fitted.transform(images)[order])


def test_each_sample_is_featurized_on_its_own(fitted, images):
    assert_equal_to_float32_rounding(fitted.transform(images[3:4]), fitted.transform(images)[3:4])


def test_the_rounding_tolerance_does_not_hide_other_noise(fitted, images):
    other_noise = copy.deepcopy(fitted)
    other_noise.noise_seed_ += 1
    with pytest.raises(AssertionError):
        assert_equal_to_float32_rounding(other_noise.transform(images), fitted.transform(images))


@pytest.mark.parametrize("dumps_loads", ["pickle", "joblib"])
def test_persistence_round_trip_keeps_features(fitted, images, tmp_path, dumps_loads):
    if dumps_loads == "pickle":
        restored = pickle.loads(pickle.dumps(fitted))
    else:
        joblib.dump(fitted, tmp_path / "feat.joblib")
        restored = joblib.load(tmp_path / "feat.joblib")
    np.testing.assert_array_equal(restored.transform(images), fitted.transform(images))
    np.testing.assert_array_equal(restored.get_feature_names_out(), fitted.get_feature_names_out())


def test_pickle_leaves_no_hooks_on_the_network(fitted, images):
    fitted.transform(images)
    restored = pickle.loads(pickle.dumps(fitted))
    assert not any(module._forward_hooks for module in restored.network_.modules())


def test_clone_is_an_unfitted_copy_with_the_same_params(fitted):
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params()
    assert not any(name.endswith("_") and not name.startswith("__") for name in vars(unfitted))


def test_fit_leaves_the_global_torch_rng_alone(images):
    before = torch.get_rng_state()
    DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(images)
    assert torch.equal(torch.get_rng_state(), before)


def test_random_state_none_does_not_consume_the_global_torch_rng(images):
    before = torch.get_rng_state()
    DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, "random_state": None}).fit(images)
    assert torch.equal(torch.get_rng_state(), before)


def test_fit_and_transform_leave_the_input_unchanged(images):
    X = images.copy()
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X)
    feat.transform(X)
    np.testing.assert_array_equal(X, images)
    X4 = images.reshape(-1, 1, 8, 8).astype(np.float32)
    kept = X4.copy()
    DiffusionFeaturizer(**TINY).fit(X4).transform(X4)
    np.testing.assert_array_equal(X4, kept)


def test_fine_tuning_a_passed_module_leaves_it_untouched(table):
    X = table[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = MLPDenoiser(n_features=X.shape[1], width=8)
    before = {name: value.clone() for name, value in module.state_dict().items()}
    feat = DiffusionFeaturizer(denoiser=module, train_denoiser=True, **TINY).fit(X)
    assert len(feat.loss_curve_) == TINY["max_steps"]
    assert feat.network_ is not module
    for name, value in module.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert module.training, "the caller's module must keep its mode"
    assert any(p.requires_grad for p in module.parameters())
