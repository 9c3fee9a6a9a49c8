"""Broken or hostile model directories: a clear error naming the file, and never code execution."""

import json
import re
import time

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


def _pipeline_with_scheduler(unet_dir, tmp_path, settings):
    """A pipeline directory around ``unet_dir`` whose scheduler config holds ``settings``."""
    pipeline = tmp_path / "pipeline"
    (pipeline / "scheduler").mkdir(parents=True)
    unet_dir.rename(pipeline / "unet")
    config = pipeline / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({"_class_name": "DDPMScheduler", **settings}))
    return pipeline, config


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"num_train_timesteps": "many"}, "num_train_timesteps must be an integer"),
        ({"num_train_timesteps": 0}, "num_train_timesteps must be an integer in"),
        ({"num_train_timesteps": 10**12}, "num_train_timesteps must be an integer in"),
        ({"beta_end": 2.0}, r"beta_end must hold numbers in \[0, 1\), got 2.0"),
        ({"num_train_timesteps": 4, "trained_betas": [0.1, float("nan"), 0.1, 0.1]}, "trained_betas must hold"),
        ({"num_train_timesteps": 4, "trained_betas": [0.1, 0.2]}, "trained_betas must hold num_train_timesteps=4"),
    ],
    ids=["not-a-number", "zero-steps", "huge", "beta-end-2", "nan-betas", "short-betas"],
)
def test_invalid_scheduler_configs_are_refused_naming_the_file(unet_dir, tmp_path, settings, problem):
    pipeline, config = _pipeline_with_scheduler(unet_dir, tmp_path, settings)
    with fails_naming(config, problem):
        load_denoiser(pipeline)


# ------------------------------------------------------------ paths and hub ids
@pytest.fixture
def no_network_expected(monkeypatch):
    """Fail the test if the hub is contacted."""
    from huggingface_hub import HfApi

    def contacted(*args, **kwargs):
        raise AssertionError("the hub was contacted")

    monkeypatch.setattr(HfApi, "model_info", contacted)


def test_a_missing_path_that_cannot_be_a_hub_id_fails_at_once(no_network_expected, digits_small):
    for missing in ("models/unets/tiny", "./models/unet", "no-such-model"):
        with pytest.raises(ValueError, match=rf"denoiser='{re.escape(missing)}': no such directory"):
            DiffusionFeaturizer(denoiser=missing, image_shape=(1, 8, 8), device="cpu").fit(digits_small[0])


@pytest.fixture
def silent_hub(monkeypatch, tmp_path):
    """A hub endpoint that accepts connections and never answers, with an empty local cache."""
    import socket

    import huggingface_hub.constants

    from diffrep.denoisers import loading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(loading, "HUB_TIMEOUT", 0.5)
    yield
    server.close()


def test_a_missing_local_path_that_could_be_a_hub_id_names_both_readings_and_times_out(silent_hub):
    start = time.monotonic()
    with pytest.raises(ValueError) as caught:
        load_denoiser("models/unet")
    assert time.monotonic() - start < 20  # never the minutes an unanswered request hangs without a timeout
    message = str(caught.value)
    assert "denoiser='models/unet' is not a local path (no such file or directory in" in message
    assert "as a Hugging Face hub id it could not be downloaded nor found in the local cache" in message


@pytest.mark.parametrize("root", ["/", "/usr", "tree"])
def test_a_directory_that_is_no_model_directory_is_refused_without_walking_it(root, tmp_path, monkeypatch):
    if root == "tree":  # many nested files, none of them a model
        for index in range(50):
            (tmp_path / f"d{index}" / "sub").mkdir(parents=True)
            (tmp_path / f"d{index}" / "sub" / "file.txt").write_text("x")
        root = tmp_path
    from pathlib import Path

    def walked(*args, **kwargs):
        raise AssertionError("the directory was walked")

    monkeypatch.setattr(Path, "rglob", walked)
    monkeypatch.setattr(Path, "iterdir", walked)
    with pytest.raises(ValueError, match=rf"denoiser='{re.escape(str(root))}' is not a diffusers model directory"):
        DiffusionFeaturizer(denoiser=root, image_shape=(1, 8, 8), device="cpu").fit(np.zeros((4, 64)))


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
