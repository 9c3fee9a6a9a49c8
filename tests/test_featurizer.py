"""DiffusionFeaturizer as a user meets it: fit on images or a table, transform into named features."""

import copy

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from sklearn.utils.validation import check_is_fitted

from diffrep import DiffusionFeaturizer
from diffrep._engine.device import resolve_device
from diffrep._engine.extraction import pool
from diffrep.denoisers.mlp import MLPDenoiser

from .helpers import TINY


def _activations(network, names, x_t, timesteps):
    """Activations of ``names`` in one plain forward pass, recorded with our own hooks."""
    seen = {}
    handles = [
        network.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o))
        for name in names
    ]
    try:
        with torch.no_grad():
            network(x_t, timesteps)
    finally:
        for handle in handles:
            handle.remove()
    return seen


# --------------------------------------------------------------------- shapes and names
def test_transform_concatenates_every_layer_at_every_timestep(fitted, images):
    features = fitted.transform(images)
    width = sum(info["n_features"] for info in fitted.feature_info_.values())
    assert features.shape == (len(images), len(fitted.timesteps_) * width)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))


def test_feature_names_read_timestep_layer_channel_and_cell(fitted, images):
    names = fitted.get_feature_names_out()
    assert fitted.feature_info_["mid_block"]["cells"] == (4, 4)  # the default 4x4 grid on a 4x4 map
    width = fitted.feature_info_["mid_block"]["n_features"] + fitted.feature_info_["x0"]["n_features"]
    assert len(names) == fitted.transform(images).shape[1]
    assert names[3] == "t10__mid_block__0__r0c3"
    assert names[16 + 5] == "t10__mid_block__1__r1c1"
    assert names[fitted.feature_info_["mid_block"]["n_features"]] == "t10__x0__0__r0c0"
    assert names[width + 3] == "t50__mid_block__0__r0c3"
    assert len(set(names)) == len(names)


def test_feature_names_are_channels_when_each_gives_one_number(images):
    feat = DiffusionFeaturizer(layers="mid_block", pooling_grid=1, timesteps=(10,), image_shape=(1, 8, 8),
                               **TINY).fit(images)
    assert feat.feature_info_["mid_block"]["cells"] == (1, 1)
    assert feat.get_feature_names_out()[:3].tolist() == ["t10__mid_block__0", "t10__mid_block__1", "t10__mid_block__2"]


def test_feature_blocks_are_timestep_major(fitted, images):
    both = fitted.transform(images)
    at_50 = fitted.extract(images, 50)
    np.testing.assert_array_equal(both[:, -at_50.shape[1] :], at_50)


def test_set_output_pandas_labels_columns_with_feature_names(fitted, images):
    feat = copy.deepcopy(fitted).set_output(transform="pandas")
    frame = feat.transform(images)
    assert list(frame.columns) == list(fitted.get_feature_names_out())
    np.testing.assert_array_equal(frame.to_numpy(), fitted.transform(images))


# --------------------------------------------------------------------------- layers
@pytest.mark.parametrize("layer", ["mid_block", "up_blocks.1", "down_blocks.0"])
def test_feature_info_describes_the_real_unet_activation(images, layer):
    feat = DiffusionFeaturizer(layers=layer, pooling="none", image_shape=(1, 8, 8), **TINY).fit(images)
    x = torch.zeros((1, 1, 8, 8))
    activation = _activations(feat.network_, [layer], x, torch.tensor([50]))[layer]
    if isinstance(activation, tuple):  # diffusers down blocks return (hidden, skip states)
        activation = activation[0]
    info = feat.feature_info_[layer]
    assert info["shape"] == tuple(activation.shape[1:])
    assert info["channels"] == activation.shape[1]
    assert info["n_features"] == activation[0].numel()
    assert feat.transform(images).shape == (len(images), activation[0].numel())


def test_x0_source_has_the_shape_of_the_input(fitted):
    assert fitted.feature_info_["x0"]["shape"] == (1, 8, 8)
    assert fitted.feature_info_["x0"]["n_features"] == 16  # one channel on the 4x4 grid


def test_mlp_hidden_block_can_be_captured(table):
    X, _ = table
    feat = DiffusionFeaturizer(layers=("blocks.0", "x0"), **TINY).fit(X)
    assert isinstance(feat.network_, MLPDenoiser)
    hidden = _activations(feat.network_, ["blocks.0"], torch.zeros((1, X.shape[1])), torch.tensor([50]))
    assert feat.feature_info_["blocks.0"]["n_features"] == hidden["blocks.0"].shape[1]
    assert feat.feature_info_["blocks.0"]["cells"] == ()
    assert feat.feature_info_["x0"]["n_features"] == X.shape[1]
    assert feat.transform(X).shape == (len(X), hidden["blocks.0"].shape[1] + X.shape[1])


def test_default_layers_are_the_first_decoder_block_and_the_mlp_middle(images, table):
    unet = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(images)
    mlp = DiffusionFeaturizer(**TINY).fit(table[0])
    assert unet.layers_ == ("up_blocks.0",)
    assert mlp.layers_ == (f"blocks.{len(mlp.network_.blocks) // 2}",)


# -------------------------------------------------------------------------- pooling
@pytest.fixture(scope="module")
def pooled(images):
    """The same trained network read out with each pooling, over whole maps (a grid of one cell)."""
    return {
        pooling: DiffusionFeaturizer(
            pooling=pooling, pooling_grid=1, layers="mid_block", image_shape=(1, 8, 8), **TINY
        ).fit(images)
        for pooling in ("mean", "max", "none")
    }


def test_pooling_widths_match_feature_info(pooled, images):
    info = pooled["none"].feature_info_["mid_block"]
    assert pooled["none"].transform(images).shape[1] == info["channels"] * int(np.prod(info["spatial"]))
    assert info["cells"] == info["spatial"]
    assert pooled["mean"].transform(images).shape[1] == info["channels"]
    assert pooled["max"].transform(images).shape[1] == info["channels"]
    for feat in pooled.values():
        assert feat.transform(images).shape[1] == feat.feature_info_["mid_block"]["n_features"]


def test_mean_and_max_pool_the_unpooled_map(pooled, images):
    info = pooled["none"].feature_info_["mid_block"]
    spatial = pooled["none"].transform(images).reshape(len(images), info["channels"], -1)
    np.testing.assert_allclose(pooled["mean"].transform(images), spatial.mean(axis=2), atol=1e-5)
    np.testing.assert_allclose(pooled["max"].transform(images), spatial.max(axis=2), atol=1e-6)


def _reference_grid_pool(maps, cells, reduce):
    """Adaptive pooling by its definition: cell i of n along L positions spans floor(iL/n) .. ceil((i+1)L/n)."""
    n, channels, height, width = maps.shape
    rows, columns = cells
    out = np.empty((n, channels, rows, columns), dtype=maps.dtype)
    for i in range(rows):
        top, bottom = (i * height) // rows, -((-(i + 1) * height) // rows)
        for j in range(columns):
            left, right = (j * width) // columns, -((-(j + 1) * width) // columns)
            out[:, :, i, j] = reduce(maps[:, :, top:bottom, left:right], axis=(2, 3))
    return out.reshape(n, -1)


@pytest.mark.parametrize("pooling, reduce", [("mean", np.mean), ("max", np.max)])
@pytest.mark.parametrize("grid, cells", [(2, (2, 2)), (3, (3, 3)), ((1, 3), (1, 3)), (9, (4, 4))])
def test_grid_pooling_equals_a_reference_adaptive_pooling_of_the_unpooled_map(
    pooled, images, pooling, reduce, grid, cells
):
    feat = DiffusionFeaturizer(
        pooling=pooling, pooling_grid=grid, layers="mid_block", image_shape=(1, 8, 8), **TINY
    ).fit(images)
    info = pooled["none"].feature_info_["mid_block"]
    maps = pooled["none"].transform(images).reshape(len(images), *info["shape"])
    assert info["spatial"] == (4, 4)  # 3 cells overlap on 4 positions; 9 cells exceed them and stay 4
    assert feat.feature_info_["mid_block"]["cells"] == cells
    np.testing.assert_allclose(feat.transform(images), _reference_grid_pool(maps, cells, reduce), atol=1e-5)
    names = feat.get_feature_names_out()
    assert names[cells[0] * cells[1] + 1] == "t50__mid_block__1__r0c1"  # channel-major, then cell row-major


def test_a_token_sequence_is_pooled_to_rows_times_columns_cells():
    tokens = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    pooled = pool(tokens, "mean", (2, 2))
    np.testing.assert_allclose(pooled.reshape(2, 3, 4), _reference_grid_pool(tokens[:, :, None].numpy(), (1, 4), np.mean).reshape(2, 3, 4))
    assert pool(tokens, "max", (4, 4)).shape == (2, 3 * 10)  # 16 cells exceed 10 tokens: one per token

# ---------------------------------------------------------------- noise levels
@pytest.mark.parametrize(("num_train_timesteps", "beta_schedule"), [(1000, "linear"), (200, "squaredcos_cap_v2")])
def test_sigmas_follow_the_diffusers_schedule(images, num_train_timesteps, beta_schedule):
    timesteps = (1, 20, 100, num_train_timesteps - 1)
    feat = DiffusionFeaturizer(
        timesteps=timesteps,
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        image_shape=(1, 8, 8),
        **{**TINY, "max_steps": 0},
    ).fit(images)
    abar = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule).alphas_cumprod
    abar = abar.double().numpy()[list(timesteps)]
    np.testing.assert_allclose(feat.sigmas_, np.sqrt((1 - abar) / abar), rtol=1e-6)
    assert np.all(np.diff(feat.sigmas_) > 0), "larger timesteps must be noisier"


def test_timesteps_for_sigmas_round_trips(fitted):
    np.testing.assert_array_equal(fitted.timesteps_for_sigmas(fitted.sigmas_), fitted.timesteps_)
    all_sigmas = fitted.schedule_.sigmas(np.arange(fitted.schedule_.num_train_timesteps))
    between = np.sqrt(all_sigmas[300] * all_sigmas[301]) * 1.0001  # just past the log-midpoint
    assert fitted.timesteps_for_sigmas([between]).tolist() == [301]


def test_extract_at_other_timesteps_equals_a_featurizer_fitted_for_them(fitted, images):
    refitted = DiffusionFeaturizer(
        timesteps=(5, 200), layers=("mid_block", "x0"), image_shape=(1, 8, 8), **TINY
    ).fit(images)
    np.testing.assert_allclose(fitted.extract(images, (5, 200)), refitted.transform(images), atol=1e-6)
    assert fitted.timesteps_ == (10, 50), "extract must not change what transform returns"


# ------------------------------------------------------------------- early stop
def _count_calls(module):
    calls = []
    return calls, module.register_forward_hook(lambda *args: calls.append(1))


def test_forward_stops_once_the_requested_module_fired(images):
    feat = DiffusionFeaturizer(layers=("mid_block",), image_shape=(1, 8, 8), **TINY).fit(images)
    down, down_handle = _count_calls(feat.network_.down_blocks[0])
    up, up_handle = _count_calls(feat.network_.up_blocks[0])
    try:
        feat.transform(images)
    finally:
        down_handle.remove()
        up_handle.remove()
    assert down, "the encoder must run"
    assert not up, "the decoder ran although only mid_block was requested"


def test_forward_runs_to_the_end_when_the_clean_estimate_is_requested(images):
    feat = DiffusionFeaturizer(layers=("mid_block", "x0"), image_shape=(1, 8, 8), **TINY).fit(images)
    up, handle = _count_calls(feat.network_.up_blocks[-1])
    try:
        feat.transform(images)
    finally:
        handle.remove()
    assert up


class _Recorder(torch.nn.Module):
    """A linear denoiser that remembers the batch size and inference mode of every call."""

    def __init__(self, n_features):
        super().__init__()
        self.layer = torch.nn.Linear(n_features, n_features)
        self.calls = []

    def forward(self, x_t, t):
        self.calls.append((x_t.shape[0], torch.is_inference_mode_enabled()))
        return self.layer(x_t)


def test_transform_runs_in_batches_under_inference_mode(table):
    X = table[0][:40]
    feat = DiffusionFeaturizer(denoiser=_Recorder(X.shape[1]), layers="layer", timesteps=(10, 20), **TINY)
    feat.set_params(batch_size=16).fit(X)
    feat.network_.calls.clear()
    feat.transform(X)
    sizes = [size for size, _ in feat.network_.calls]
    assert all(inference for _, inference in feat.network_.calls)
    assert max(sizes) <= 16, "no forward pass may exceed batch_size"
    assert sum(sizes) == len(X) * 2, "every sample is seen once per timestep"


# -------------------------------------------------------------------------- inputs
def test_3d_images_equal_flattened_images_with_image_shape(images):
    flat = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(images)
    cube = DiffusionFeaturizer(**TINY).fit(images.reshape(-1, 8, 8))
    assert cube.sample_shape_ == (1, 8, 8)
    assert cube.n_features_in_ == 64
    np.testing.assert_allclose(cube.transform(images.reshape(-1, 8, 8)), flat.transform(images), atol=1e-6)
    np.testing.assert_allclose(cube.transform(images), flat.transform(images), atol=1e-6)


def test_4d_colour_images():
    rng = np.random.default_rng(0)
    X = rng.random((12, 3, 8, 8))
    feat = DiffusionFeaturizer(layers=("mid_block", "x0"), **TINY).fit(X)
    assert feat.sample_shape_ == (3, 8, 8)
    assert feat.network_.config.in_channels == 3
    assert feat.feature_info_["x0"]["n_features"] == 3 * 16  # three channels on the 4x4 grid
    assert feat.transform(X).shape == (12, feat.feature_info_["mid_block"]["n_features"] + 3 * 16)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 8, 8)])
def test_unet_is_sized_from_the_image_shape(shape):
    X = np.random.default_rng(0).random((3, *shape))
    feat = DiffusionFeaturizer(layers=("mid_block", "x0"), pooling="none", **{**TINY, "max_steps": 1}).fit(X)
    assert feat.network_.config.in_channels == shape[0]
    assert feat.network_.config.out_channels == shape[0]
    assert feat.feature_info_["x0"]["shape"] == shape
    assert feat.transform(X).shape == (3, sum(i["n_features"] for i in feat.feature_info_.values()))


@pytest.mark.parametrize(
    "shape, model_width, channels",
    [((1, 8, 8), None, (32, 64)), ((3, 16, 16), None, (32, 64)), ((1, 24, 12), None, (16, 32, 64)),
     ((1, 28, 28), None, (16, 32, 64)), ((3, 32, 32), None, (16, 32, 64)), ((1, 28, 28), 32, (32, 64, 128)),
     ((3, 128, 128), None, (16, 32, 64, 128))],
)
def test_the_default_unet_is_narrower_above_16x16_pixels_and_doubles_channels_per_level(shape, model_width, channels):
    X = np.random.default_rng(0).random((2, *shape))
    settings = {**TINY, "max_steps": 0, "model_width": model_width}
    feat = DiffusionFeaturizer(**settings).fit(X)
    assert tuple(feat.network_.config.block_out_channels) == channels

def test_dataframe_input_keeps_feature_names(table):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(table[0], columns=[f"c{i}" for i in range(table[0].shape[1])])
    feat = DiffusionFeaturizer(**TINY).fit(X)
    np.testing.assert_array_equal(feat.feature_names_in_, X.columns.to_numpy())
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(feat.transform(X), feat.transform(X.to_numpy()))
    with pytest.raises(ValueError, match="feature names"):
        feat.transform(X[X.columns[::-1]])


# ------------------------------------------------------------------------- scaling
def test_image_scaling_maps_the_training_range_to_minus_one_one(images):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(images)
    scaled = feat.scaler_.transform(images)
    assert scaled.min() == pytest.approx(-1.0) and scaled.max() == pytest.approx(1.0)


def test_table_scaling_standardizes_columns(table):
    feat = DiffusionFeaturizer(**TINY).fit(table[0])
    scaled = feat.scaler_.transform(table[0])
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)


@pytest.mark.parametrize("kind", ["images", "table"])
def test_features_do_not_depend_on_the_units_of_the_input(images, table, kind):
    X, extra = (images, dict(image_shape=(1, 8, 8))) if kind == "images" else (table[0], {})
    units = 3.0 if kind == "images" else np.arange(1.0, X.shape[1] + 1)
    plain = DiffusionFeaturizer(**extra, **TINY).fit(X)
    rescaled = DiffusionFeaturizer(**extra, **TINY).fit(X * units + 7.0)
    np.testing.assert_allclose(rescaled.transform(X * units + 7.0), plain.transform(X), atol=1e-4)


# ------------------------------------------------------------------------ training
def test_training_keeps_a_loss_curve(images):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, "max_steps": 5}).fit(images)
    assert len(feat.loss_curve_) == feat.n_steps_ == 5
    assert all(np.isfinite(feat.loss_curve_))


@pytest.mark.parametrize("settings", [dict(max_steps=0), dict(train_denoiser=False)])
def test_untrained_featurizer_keeps_its_random_initialization(images, settings):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, **settings}).fit(images)
    trained = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(images)
    assert feat.loss_curve_ == [] and feat.n_steps_ == 0
    assert not np.allclose(feat.transform(images), trained.transform(images))


def test_diverging_loss_raises_and_leaves_the_featurizer_unfitted(images):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, "learning_rate": 1e12, "max_steps": 30})
    with pytest.raises(FloatingPointError, match=r"step \d+.*learning_rate"):
        feat.fit(images)
    with pytest.raises(Exception, match="not fitted"):
        check_is_fitted(feat)


class _NaNDenoiser(torch.nn.Module):
    def __init__(self, n_features):
        super().__init__()
        self.layer = torch.nn.Linear(n_features, n_features)

    def forward(self, x_t, t):
        return self.layer(x_t) * float("nan")


def test_refit_that_diverges_does_not_leave_the_old_fit_behind(table):
    X = table[0]
    feat = DiffusionFeaturizer(denoiser=_NaNDenoiser(X.shape[1]), layers="layer", **TINY).fit(X)
    check_is_fitted(feat)
    with pytest.raises(FloatingPointError, match=r"step 0.*learning_rate"):
        feat.set_params(train_denoiser=True).fit(X)
    with pytest.raises(Exception, match="not fitted"):
        feat.transform(X)


def test_auto_device_is_resolved_in_fit(images):
    feat = DiffusionFeaturizer(image_shape=(1, 8, 8), **{**TINY, "device": "auto"}).fit(images)
    assert isinstance(feat.device_, torch.device)
    assert feat.device_ == resolve_device("auto")
    assert next(feat.network_.parameters()).device.type == feat.device_.type
    assert feat.device == "auto", "fit must not overwrite the parameter"
