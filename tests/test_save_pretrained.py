"""A saved model directory round-trips: diffusers reads it, from_pretrained gives the same features."""

import json

import numpy as np
import pytest
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from diffrep import DiffusionFeaturizer, MLPDenoiser

from .helpers import TINY


@pytest.fixture(scope="module")
def unet_featurizer(digits_small):
    """Fitted on digits scaled to another range than the new data below, with two noise draws."""
    params = dict(timesteps=(10, 50), layers=("mid_block", "x0"), n_noise_draws=2, pooling="max")
    return DiffusionFeaturizer(image_shape=(1, 8, 8), **params, **TINY).fit(digits_small[0][:60] * 2.0)


def test_unet_directory_is_a_diffusers_pipeline(unet_featurizer, tmp_path):
    unet_featurizer.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DModel"] and index["scheduler"] == ["diffusers", "DDPMScheduler"]
    pipeline = DDPMPipeline.from_pretrained(tmp_path)
    assert isinstance(pipeline.unet, UNet2DModel) and isinstance(pipeline.scheduler, DDPMScheduler)
    assert pipeline.scheduler.config.num_train_timesteps == unet_featurizer.schedule_.num_train_timesteps


def test_from_pretrained_gives_the_saved_features_on_new_data(
    unet_featurizer, digits_small, tmp_path, training_forbidden, capfd
):
    unet_featurizer.save_pretrained(tmp_path)
    capfd.readouterr()
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    assert "accelerate" not in capfd.readouterr().err
    new = digits_small[0][60:]
    np.testing.assert_array_equal(loaded.transform(new), unet_featurizer.transform(new))
    np.testing.assert_array_equal(loaded.extract(new, [200]), unet_featurizer.extract(new, [200]))
    assert loaded.get_feature_names_out().tolist() == unet_featurizer.get_feature_names_out().tolist()
    assert loaded.n_steps_ == unet_featurizer.n_steps_ and loaded.loss_curve_ == unet_featurizer.loss_curve_
    saved = {k: v for k, v in unet_featurizer.get_params().items() if k not in ("denoiser", "device")}
    assert {k: v for k, v in loaded.get_params().items() if k in saved} == saved
    assert loaded.get_params()["denoiser"] == str(tmp_path)


def test_config_holds_the_settings_and_the_noise_seed(unet_featurizer, tmp_path):
    unet_featurizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "diffrep_config.json").read_text())
    assert config["params"]["n_noise_draws"] == 2 and config["params"]["timesteps"] == [10, 50]
    fitted = config["fitted"]
    assert fitted["sample_shape"] == [1, 8, 8] and fitted["data_format"] == "channels_first"
    assert fitted["layers"] == ["mid_block", "x0"] and fitted["scaling"] == "minmax"
    assert "noise_seed" in fitted
    assert "memory" not in config["params"] and "denoiser" not in config["params"]


def test_the_data_scaling_is_saved_not_refitted(unet_featurizer, tmp_path):
    unet_featurizer.save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.scaler_.offset_, unet_featurizer.scaler_.offset_)
    np.testing.assert_array_equal(loaded.scaler_.scale_, unet_featurizer.scaler_.scale_)
    assert unet_featurizer.scaler_.scale_[0] > 9.0, "the training data spans [0, 32], not the digits' [0, 16]"


def test_mlp_is_saved_as_a_model_directory_that_reloads(table, tmp_path, training_forbidden):
    pandas = pytest.importorskip("pandas")
    X = pandas.DataFrame(table[0], columns=[f"col{i}" for i in range(6)])
    original = DiffusionFeaturizer(layers=("blocks.0", "x0"), timesteps=(5, 30), **{**TINY, "max_steps": 0}).fit(X)
    original.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == "MLPDenoiser"
    assert not (tmp_path / "unet").exists() and not (tmp_path / "model_index.json").exists()
    assert isinstance(MLPDenoiser.from_pretrained(tmp_path), MLPDenoiser)
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.feature_names_in_, original.feature_names_in_)
    np.testing.assert_array_equal(loaded.transform(X.iloc[:40] * 3.0), original.transform(X.iloc[:40] * 3.0))


def test_the_layout_is_saved(tmp_path):
    images = np.random.default_rng(0).uniform(size=(10, 8, 8, 3))
    original = DiffusionFeaturizer(**{**TINY, "max_steps": 0}).fit(images)
    original.save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path)
    assert loaded.data_format_ == "channels_last"
    np.testing.assert_array_equal(loaded.transform(images), original.transform(images))


def test_a_directory_without_diffrep_config_is_refused(unet_featurizer, tmp_path):
    unet_featurizer.network_.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no diffrep_config.json.*DiffusionFeaturizer\\(denoiser=directory\\)"):
        DiffusionFeaturizer.from_pretrained(tmp_path)
