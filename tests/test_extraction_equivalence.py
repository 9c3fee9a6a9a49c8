"""Every optimization of feature extraction gives the features of the plain, unoptimized path.

The reference below is the definition of the features, computed the slow way:
the whole data at once, one timestep and one noise draw at a time, a full
forward pass with no early stop, then the mean over draws.
"""

import numpy as np
import pytest
import torch

from diffrep import DiffusionFeaturizer
from diffrep._engine.capture import run_with_capture
from diffrep._engine.extraction import FeatureExtractor, pool
from diffrep._engine.validation import check_pooling_grid

from .helpers import TINY, extraction_noise, scaled_samples

TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def assert_bfloat16_close(half, full):
    """The stated bfloat16 tolerance (8 significant bits through a whole network).

    The difference has at most 2% of the norm of the float32 features.
    """
    assert np.linalg.norm(half - full) <= 0.02 * np.linalg.norm(full)


def reference_features(featurizer, X, timesteps):
    x0 = torch.from_numpy(scaled_samples(featurizer, X))
    modules = [name for name in featurizer.layers_ if name != "x0"]
    blocks = []
    with torch.inference_mode():
        for timestep in timesteps:
            t = torch.full((len(x0),), timestep, dtype=torch.long)
            per_draw = []
            for draw in range(featurizer.n_noise_draws):
                noise = extraction_noise(featurizer, X, timestep, draw)
                x_t = featurizer.schedule_.add_noise(x0, noise, t)
                captured = run_with_capture(featurizer.network_, x_t, t, modules, need_output=True)
                captured["x0"] = featurizer.schedule_.predict_x0(x_t, captured["__output__"], t)
                grid = check_pooling_grid(featurizer.pooling_grid)
                pooled = [pool(captured[name], featurizer.pooling, grid) for name in featurizer.layers_]
                per_draw.append(torch.cat(pooled, dim=1))
            blocks.append(torch.stack(per_draw).mean(dim=0))
    return torch.cat(blocks, dim=1).numpy()


def fitted(X, **params):
    return DiffusionFeaturizer(**dict(TINY, image_shape=(1, 8, 8), **params)).fit(X)


def extractor(featurizer, **options):
    return FeatureExtractor(
        featurizer.network_, featurizer.schedule_, featurizer.noise_seed_, featurizer.n_noise_draws,
        featurizer.layers_, featurizer.pooling, featurizer.device_,
        grid=check_pooling_grid(featurizer.pooling_grid), **options,
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(layers="mid_block"),
        dict(layers=("up_blocks.1", "x0"), pooling="max"),
        dict(layers=("down_blocks.0", "mid_block"), pooling="none", n_noise_draws=3),
        dict(layers=("x0", "up_blocks.0"), n_noise_draws=2, prediction_type="v_prediction"),
    ],
)
@pytest.mark.parametrize("batch_size", [1, 5, 64, 10_000])
def test_batched_timesteps_and_draws_give_the_reference_features(digits_small, params, batch_size):
    """(sample, timestep, draw) rows share forward passes; the features stay those of the slow path."""
    X = digits_small[0][:37]
    featurizer = fitted(X, timesteps=(5, 300, 900), batch_size=batch_size, **params)
    features = featurizer.transform(X)
    expected = reference_features(featurizer, X, featurizer.timesteps_)
    assert features.dtype == np.float32 and features.shape == expected.shape
    np.testing.assert_allclose(features, expected, **TOLERANCE)


def test_timesteps_in_one_call_equal_separate_calls(digits_small):
    X = digits_small[0]
    featurizer = fitted(X, n_noise_draws=2)
    timesteps = (20, 150, 600, 999)
    together = featurizer.extract(X, timesteps)
    separate = np.hstack([featurizer.extract(X, t) for t in timesteps])
    np.testing.assert_allclose(together, separate, **TOLERANCE)


def test_features_do_not_depend_on_batch_size_or_order(digits_small):
    X = digits_small[0]
    featurizer = fitted(X, timesteps=(30, 400))
    features = featurizer.transform(X)
    order = np.random.default_rng(0).permutation(len(X))
    for batch_size in (3, 50, 999):
        other = extractor(featurizer).transform(scaled_samples(featurizer, X[order]), featurizer.timesteps_, batch_size)
        np.testing.assert_allclose(other, features[order], **TOLERANCE)


def test_data_are_prepared_batch_by_batch_in_one_pass(digits_small):
    """Scaling streams with the batches: no scaled copy of the whole data, each sample prepared once."""
    X = digits_small[0]
    featurizer = fitted(X, timesteps=(10, 60, 300), n_noise_draws=2, batch_size=24)
    prepared = []

    def prepare(samples):
        prepared.append(len(samples))
        return scaled_samples(featurizer, samples)

    timesteps = featurizer.timesteps_
    features = extractor(featurizer).transform(X, timesteps, featurizer.batch_size, prepare=prepare)
    np.testing.assert_allclose(features, featurizer.transform(X), **TOLERANCE)
    # 24 rows per forward pass: 12 (sample, timestep) pairs of 2 draws, i.e. 4 samples at 3 timesteps
    assert prepared == [4] * (len(X) // 4)
    assert max(prepared) < len(X)


def test_mid_block_features_never_run_the_decoder(digits_small):
    X = digits_small[0]
    featurizer = fitted(X, layers="mid_block")
    decoder_calls = []
    handle = featurizer.network_.up_blocks.register_forward_pre_hook(lambda *args: decoder_calls.append(1))
    try:
        featurizer.transform(X)
    finally:
        handle.remove()
    assert decoder_calls == []


def test_bfloat16_autocast_stays_within_its_stated_tolerance(digits_small):
    X = digits_small[0]
    featurizer = fitted(X, layers=("mid_block", "x0"), timesteps=(50, 500, 900))
    data = scaled_samples(featurizer, X)
    full = extractor(featurizer).transform(data, featurizer.timesteps_, 64)
    half = extractor(featurizer, precision="bfloat16").transform(data, featurizer.timesteps_, 64)
    assert half.dtype == np.float32
    assert not np.array_equal(half, full)  # autocast did run in bfloat16
    assert_bfloat16_close(half, full)


def test_channels_last_gives_the_same_features(digits_small):
    X = np.repeat(digits_small[0], 3, axis=1) * np.linspace(0.5, 1.5, 3 * 64)  # 3-channel 8x8 images
    params = dict(TINY, image_shape=(3, 8, 8), layers=("mid_block", "up_blocks.1"))
    featurizer = DiffusionFeaturizer(**params).fit(X)
    data = scaled_samples(featurizer, X)
    plain = extractor(featurizer, channels_last=False)
    channels_last = extractor(featurizer, channels_last=True)
    seen = []
    handle = featurizer.network_.conv_in.register_forward_pre_hook(
        lambda module, inputs: seen.append(inputs[0].stride(1) == 1)  # channels are innermost
    )
    try:
        expected = plain.transform(data, featurizer.timesteps_, 64)
        features = channels_last.transform(data, featurizer.timesteps_, 64)
    finally:
        handle.remove()
    assert seen == [False, False, True, True]
    np.testing.assert_allclose(features, expected, **TOLERANCE)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_extraction_matches_the_cpu(digits_small):
    """Pinned memory, non-blocking copies and the asynchronous write-back keep the features."""
    X = digits_small[0]
    on_cpu = fitted(X, layers=("mid_block", "x0"), timesteps=(20, 400), n_noise_draws=2)
    on_gpu = fitted(X, layers=("mid_block", "x0"), timesteps=(20, 400), n_noise_draws=2, device="cuda")
    np.testing.assert_allclose(on_gpu.transform(X), on_cpu.transform(X), rtol=1e-3, atol=1e-4)
    data = scaled_samples(on_gpu, X)
    half = extractor(on_gpu, precision="bfloat16").transform(data, on_gpu.timesteps_, 32)
    full = extractor(on_gpu).transform(data, on_gpu.timesteps_, 32)
    assert_bfloat16_close(half, full)
