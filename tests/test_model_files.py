"""Broken or hostile model directories: a clear error naming the file, and never code execution."""

import json
import re

import numpy as np
import pytest
import torch

from diffrep import DiffusionFeaturizer
from diffrep.denoisers.loading import load_denoiser
from diffrep.denoisers.mlp import MLPDenoiser
from diffrep.denoisers.unet import build_unet

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture
def unet_dir(tmp_path):
    """A real tiny UNet2DModel directory written by ``save_pretrained``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        build_unet((1, 8, 8), width=8).save_pretrained(tmp_path / "unet", safe_serialization=True)
    return tmp_path / "unet"


@pytest.fixture
def mlp_dir(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        MLPDenoiser(n_features=6, width=8).save_pretrained(tmp_path / "mlp", safe_serialization=True)
    return tmp_path / "mlp"


def edit_config(directory, **changes):
    path = directory / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


def fails_naming(path, what):
    """``pytest.raises`` for a ValueError whose message names ``path`` and says ``what``."""
    return pytest.raises(ValueError, match=rf"(?s){re.escape(str(path))}.*{what}|{what}.*{re.escape(str(path))}")


def test_intact_directories_load(unet_dir, mlp_dir, digits_small):
    network, schedule = load_denoiser(unet_dir)
    assert isinstance(network, torch.nn.Module) and schedule is None
    X = digits_small[0]
    features = DiffusionFeaturizer(denoiser=unet_dir, image_shape=(1, 8, 8), device="cpu").fit_transform(X)
    assert np.isfinite(features).all()
    assert isinstance(load_denoiser(mlp_dir)[0], MLPDenoiser)


def test_truncated_weights(unet_dir):
    weights = unet_dir / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with fails_naming(weights, "truncated or corrupt"):
        load_denoiser(unet_dir)


def test_corrupt_header_bytes(unet_dir):
    weights = unet_dir / WEIGHTS
    content = bytearray(weights.read_bytes())
    content[10:40] = b"\xff" * 30
    weights.write_bytes(bytes(content))
    with fails_naming(weights, "truncated or corrupt"):
        load_denoiser(unet_dir)


def test_corrupt_tensor_bytes_become_nan_and_are_caught(unet_dir):
    """safetensors has no checksum: overwritten data loads unless the values are impossible."""
    weights = unet_dir / WEIGHTS
    content = bytearray(weights.read_bytes())
    content[-64:] = b"\xff" * 64  # float32 NaNs in the last tensor
    weights.write_bytes(bytes(content))
    with fails_naming(weights, "NaN or infinite values"):
        load_denoiser(unet_dir)


def test_config_with_other_sizes_than_the_weights(unet_dir):
    edit_config(unet_dir, block_out_channels=[16, 16])
    with fails_naming(unet_dir / WEIGHTS, "do not match the model described by"):
        load_denoiser(unet_dir)


@pytest.mark.parametrize("n_blocks, problem", [(4, "missing from the file"), (2, "not in the model")])
def test_config_with_more_or_fewer_layers_than_the_weights(mlp_dir, n_blocks, problem):
    """diffusers only warns here (and would leave new layers at random values); diffrep refuses."""
    edit_config(mlp_dir, n_blocks=n_blocks)
    with fails_naming(mlp_dir / WEIGHTS, problem):
        load_denoiser(mlp_dir)


def test_no_weights_file(unet_dir):
    (unet_dir / WEIGHTS).unlink()
    with fails_naming(unet_dir, "has a config.json but no weights file"):
        load_denoiser(unet_dir)


def test_config_that_is_not_json(unet_dir):
    (unet_dir / "config.json").write_text("{not json")
    with fails_naming(unet_dir / "config.json", "cannot read"):
        load_denoiser(unet_dir)


def test_broken_scheduler_config_of_a_pipeline(unet_dir, tmp_path):
    pipeline = tmp_path / "pipeline"
    (pipeline / "scheduler").mkdir(parents=True)
    unet_dir.rename(pipeline / "unet")
    config = pipeline / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({"_class_name": "DDPMScheduler", "num_train_timesteps": "many"}))
    with fails_naming(config, "cannot use the scheduler config"):
        load_denoiser(pipeline)


class _WritesMarker:
    """Unpickling this object creates a file: the proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_would_run_code_is_refused_without_running_it(unet_dir, tmp_path, digits_small):
    network, _ = load_denoiser(unet_dir)
    (unet_dir / WEIGHTS).unlink()
    weights = unet_dir / "diffusion_pytorch_model.bin"
    marker = tmp_path / "code-ran"
    torch.save(dict(network.state_dict(), payload=_WritesMarker(marker)), weights)

    with fails_naming(weights, "refusing to load"):
        load_denoiser(unet_dir)
    with fails_naming(weights, "refusing to load"):
        DiffusionFeaturizer(denoiser=unet_dir, image_shape=(1, 8, 8), device="cpu").fit(digits_small[0])
    assert not marker.exists()


def test_a_plain_tensor_pickle_still_loads(unet_dir):
    network, _ = load_denoiser(unet_dir)
    (unet_dir / WEIGHTS).unlink()
    torch.save(network.state_dict(), unet_dir / "diffusion_pytorch_model.bin")
    loaded, _ = load_denoiser(unet_dir)
    for name, value in network.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
