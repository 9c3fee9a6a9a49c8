"""Bad inputs and parameters are refused with an error that names them, before any training."""

import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from diffrep import DiffusionFeaturizer

from .helpers import TINY


# Every error here must come before the (slow) training starts.
pytestmark = pytest.mark.usefixtures("training_forbidden")


@pytest.fixture(scope="module")
def images(digits_small):
    return digits_small[0][:20]


def _with(images, position, value):
    X = images.copy()
    X[position] = value
    return X


def _fit(images, X=None, **params):
    DiffusionFeaturizer(**{"image_shape": (1, 8, 8), **TINY, **params}).fit(images if X is None else X)


# ------------------------------------------------------------------------------- X
@pytest.mark.parametrize(
    ("make_X", "params", "match"),
    [
        (lambda X: _with(X, (2, 5), np.nan), {}, "X contains NaN"),
        (lambda X: _with(X, (0, 0), np.inf), {}, "X contains infinity"),
        (lambda X: X.reshape(-1, 1, 1, 8, 8), {"image_shape": None}, "X must be 2-D.*5 dimension"),
        (lambda X: X[:, 0], {"image_shape": None}, "2D array"),
        (lambda X: X[:0], {}, "0 sample"),
        (lambda X: X[:0].reshape(0, 1, 8, 8), {"image_shape": None}, "0 sample"),
        (lambda X: X[:1], {}, "1 sample.*minimum of 2"),
        (lambda X: X, {"image_shape": (1, 8, 9)}, "image_shape=.*72 values.*64 features"),
        (lambda X: X, {"image_shape": (8, 8)}, "image_shape must be three positive integers"),
        (lambda X: X, {"image_shape": (0, 8, 8)}, "image_shape must be three positive integers"),
        (lambda X: X.reshape(-1, 1, 8, 8), {"image_shape": (1, 4, 16)}, "image_shape"),
    ],
    ids=["nan", "inf", "5d", "1d", "empty", "empty-4d", "one-sample", "image-shape-size",
         "image-shape-length", "image-shape-zero", "image-shape-vs-4d"],
)
def test_bad_X_is_refused(images, make_X, params, match):
    with pytest.raises(ValueError, match=match):
        _fit(images, make_X(images), **params)


# ------------------------------------------------------------------------ timesteps
@pytest.mark.parametrize(
    ("timesteps", "error", "match"),
    [
        (1000, ValueError, r"timesteps must lie in \[0, 999\]"),
        ((10, -1), ValueError, r"timesteps must lie in \[0, 999\]"),
        (2.5, TypeError, "'timesteps' parameter"),
        ((10.0, 20.0), TypeError, "timesteps must be integer.*timesteps_for_sigmas"),
        ("50", TypeError, "'timesteps' parameter"),
        (None, TypeError, "'timesteps' parameter"),
        ((True,), TypeError, "timesteps must be integer"),
        ((), ValueError, "timesteps must not be empty"),
        ((10, 20, 10), ValueError, "timesteps must not repeat"),
    ],
)
def test_bad_timesteps_are_refused(images, timesteps, error, match):
    with pytest.raises(error, match=match):
        _fit(images, timesteps=timesteps)


def test_timesteps_are_checked_against_the_configured_schedule(images):
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        _fit(images, num_train_timesteps=100, timesteps=(150,))


def test_numpy_integer_timesteps_are_accepted(images):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), timesteps=np.array([5, 9]), **{**TINY, "max_steps": 0})
    assert feat.fit(images).timesteps_ == (5, 9)


# -------------------------------------------------------------------------- layers
def test_unknown_layer_lists_the_valid_names(images):
    with pytest.raises(ValueError, match="middle_block") as error:
        _fit(images, layers=("middle_block",))
    assert "'mid_block'" in str(error.value) and "'x0'" in str(error.value)


@pytest.mark.parametrize(("layers", "error"), [((), TypeError), ((1,), TypeError), (("x0", "x0"), ValueError)])
def test_malformed_layers_are_refused(images, layers, error):
    with pytest.raises(error, match="layers"):
        _fit(images, layers=layers)


@pytest.mark.parametrize("layers", ["", ("x0", "")], ids=["alone", "among others"])
def test_an_empty_layer_name_is_refused_not_read_as_the_whole_network(images, layers):
    with pytest.raises(ValueError, match=r"layers must name modules of the denoiser; '' \(the whole network, "):
        _fit(images, layers=layers)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"pooling": "sum"}, ValueError, "'pooling' parameter"),
        ({"scaling": "robust"}, ValueError, "'scaling' parameter"),
        ({"prediction_type": "x0"}, ValueError, "'prediction_type' parameter"),
        ({"beta_schedule": "cubic"}, ValueError, "beta_schedule"),
        ({"device": "gpu"}, ValueError, "device must be"),
        ({"device": "banana"}, ValueError, "device must be"),
        ({"n_noise_draws": 0}, ValueError, r"\'n_noise_draws\' parameter .* \[1, 1024\]"),
        ({"n_noise_draws": 1025}, ValueError, r"\'n_noise_draws\' parameter .* \[1, 1024\]"),
        ({"n_noise_draws": 1.5}, TypeError, "'n_noise_draws' parameter .* int"),
        ({"num_train_timesteps": 0}, ValueError, "num_train_timesteps"),
        ({"max_steps": -1}, ValueError, "max_steps"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
        ({"ema_decay": 1.5}, ValueError, "ema_decay"),
        ({"model_width": 12}, ValueError, "model_width"),
        ({"model_width": 0}, ValueError, "model_width"),
        ({"train_denoiser": "yes"}, ValueError, "train_denoiser"),
        ({"verbose": -1}, ValueError, "verbose"),
        ({"denoiser": 3}, TypeError, "'denoiser' parameter"),
        ({"denoiser": "mlp"}, ValueError, "denoiser='mlp'"),
    ],
)
def test_bad_parameters_are_refused(images, params, error, match):
    with pytest.raises(error, match=match):
        _fit(images, **params)


def test_unet_needs_images(table):
    with pytest.raises(ValueError, match="denoiser='unet'"):
        DiffusionFeaturizer(denoiser="unet", **TINY).fit(table[0])


# ------------------------------------------------------------------- denoiser paths
def _junk(directory):
    (directory / "notes.txt").write_text("not a model")


def _unsupported_class(directory):
    (directory / "config.json").write_text(json.dumps({"_class_name": "VQModel"}))


def _broken_config(directory):
    (directory / "config.json").write_text("{not json")


def _config_without_weights(directory):
    (directory / "config.json").write_text(json.dumps({"_class_name": "MLPDenoiser", "n_features": 64}))


@pytest.mark.parametrize(
    ("fill", "match"),
    [
        (_junk, "not a diffusers model directory"),
        (_unsupported_class, "'VQModel' is not supported"),
        (_broken_config, "cannot read"),
        (_config_without_weights, "weights"),
    ],
)
def test_directory_that_is_no_diffusers_model_is_refused(images, tmp_path, fill, match):
    fill(tmp_path)
    with pytest.raises(ValueError, match=match):
        _fit(images, denoiser=str(tmp_path))


def test_missing_directory_is_refused(images, tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        _fit(images, denoiser=str(tmp_path / "absent"))


# ---------------------------------------------------------------------- at transform
@pytest.fixture(scope="module")
def fitted(images):
    return DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, "max_steps": 0}).fit(images)


@pytest.fixture(scope="module")
def fitted_4d(images):
    return DiffusionFeaturizer(**{**TINY, "max_steps": 0}).fit(images.reshape(-1, 1, 8, 8))


def test_transform_refuses_another_number_of_features(fitted, images):
    with pytest.raises(ValueError, match="X has 63 features.*expecting 64"):
        fitted.transform(images[:, :63])


def test_transform_refuses_images_of_another_shape(fitted_4d, images):
    with pytest.raises(ValueError, match=r"images of shape \(1, 4, 16\).*image_shape=\(1, 8, 8\)"):
        fitted_4d.transform(images.reshape(-1, 1, 4, 16))
    with pytest.raises(ValueError, match="features"):
        fitted_4d.transform(np.tile(images.reshape(-1, 1, 8, 8), (1, 3, 1, 1)))


def test_transform_refuses_nan(fitted, images):
    with pytest.raises(ValueError, match="X contains NaN"):
        fitted.transform(_with(images, (0, 0), np.nan))


def test_extract_checks_its_timesteps(fitted, images):
    with pytest.raises(ValueError, match="timesteps"):
        fitted.extract(images, 5000)


def test_timesteps_for_sigmas_refuses_non_positive_levels(fitted):
    with pytest.raises(ValueError, match="sigmas must be positive"):
        fitted.timesteps_for_sigmas([0.1, -1.0])


@pytest.mark.parametrize(
    "use",
    [
        lambda feat, X: feat.transform(X),
        lambda feat, X: feat.extract(X, 10),
        lambda feat, X: feat.get_feature_names_out(),
        lambda feat, X: feat.timesteps_for_sigmas([0.5]),
        lambda feat, X: feat.save_pretrained("never-written"),
    ],
    ids=["transform", "extract", "get_feature_names_out", "timesteps_for_sigmas", "save_pretrained"],
)
def test_unfitted_featurizer_raises_not_fitted(images, use):
    with pytest.raises(NotFittedError):
        use(DiffusionFeaturizer(**TINY), images)
