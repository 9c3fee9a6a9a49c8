"""Pretrained directories and hub ids that would hang, blow up or crash: each refused early, naming the file.

Every pipeline is a tiny random-weight one written by the fixtures of
``test_pipelines`` (no download); each test breaks one file of a copy.
"""

import json
import shutil
import threading
import time
import types

import numpy as np
import pytest

from diffrep import DiffusionFeaturizer
from diffrep._engine import cache
from diffrep.denoisers import loading
from diffrep.denoisers.loading import load_denoiser
from diffrep.denoisers.pipelines import load_pipeline

from .helpers import TINY, cached_entries, interrupt_training_at
from .test_pipelines import _save_ddpm, _save_dit, _save_stable_diffusion, _seeded


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Directories of a tiny DDPM, DiT and Stable Diffusion pipeline, never modified."""
    root = tmp_path_factory.mktemp("originals")
    _seeded(lambda: _save_ddpm(root / "ddpm"))
    _seeded(lambda: _save_dit(root / "dit"))
    _seeded(lambda: _save_stable_diffusion(root / "sd", tmp_path_factory.mktemp("tokenizer")))
    return root


@pytest.fixture
def copy_of(originals, tmp_path):
    """A fresh copy of one original pipeline directory, to break."""
    return lambda family: shutil.copytree(originals / family, tmp_path / family)


def _edit(path, **changes):
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **changes)))


# ------------------------------------------------------------ a total deadline on the hub
@pytest.fixture
def dripping_hub(originals, monkeypatch):
    """A hub whose downloads send nothing for 30 s (each read within its timeout), and no local cache."""
    import huggingface_hub

    released = threading.Event()
    names = ["model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
             "unet/diffusion_pytorch_model.safetensors"]

    def model_info(self, repo_id, timeout=None, **kwargs):
        return types.SimpleNamespace(sha="a" * 40, siblings=[types.SimpleNamespace(rfilename=n) for n in names])

    def hf_hub_download(repo_id, filename, **kwargs):
        released.wait(30)
        return str(originals / "ddpm" / filename)

    def snapshot_download(repo_id, local_files_only=False, **kwargs):
        raise FileNotFoundError("not in the local cache")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    yield
    released.set()


def test_a_dripping_hub_download_ends_at_the_deadline(dripping_hub, monkeypatch):
    monkeypatch.setenv("DIFFREP_HUB_DEADLINE", "0.5")
    photos = np.random.default_rng(0).random((4, 8, 8, 3))
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"someone/dripping.*0\.5 s deadline.*DIFFREP_HUB_DEADLINE"):
        DiffusionFeaturizer(denoiser="someone/dripping", timesteps=(10,), device="cpu").fit(photos)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf", "nan"])
def test_a_bad_deadline_setting_is_named(monkeypatch, value):
    monkeypatch.setenv("DIFFREP_HUB_DEADLINE", value)
    with pytest.raises(ValueError, match=f"DIFFREP_HUB_DEADLINE must be a positive number.*{value}"):
        loading.hub_deadline()


def test_the_deadline_defaults_to_the_documented_value(monkeypatch):
    monkeypatch.delenv("DIFFREP_HUB_DEADLINE", raising=False)
    assert loading.hub_deadline() == loading.HUB_DEADLINE
    monkeypatch.setenv("DIFFREP_HUB_DEADLINE", "42.5")
    assert loading.hub_deadline() == 42.5


# ------------------------------------------------------------ sizes bounded before a network is built
@pytest.mark.parametrize(
    ("family", "component", "change", "shown"),
    [
        ("ddpm", "unet", {"sample_size": 4096}, "sample_size.*4096"),
        ("ddpm", "unet", {"layers_per_block": 10**6}, "layers_per_block.*1000000"),
        ("ddpm", "unet", {"block_out_channels": [8, 10**6]}, "block_out_channels.*1000000"),
        ("ddpm", "unet", {"in_channels": 2.5}, "in_channels.*2.5"),
        ("dit", "transformer", {"num_layers": 10**6}, "num_layers.*1000000"),
        ("dit", "vae", {"block_out_channels": [8] * 100}, "block_out_channels must hold 1 to 8 values, got 100"),
        ("sd", "text_encoder", {"num_hidden_layers": 10**6}, "num_hidden_layers.*1000000"),
        ("sd", "unet", {"cross_attention_dim": True}, "cross_attention_dim.*True"),
    ],
)
def test_a_config_of_unbounded_size_is_refused_before_building(copy_of, family, component, change, shown):
    directory = copy_of(family)
    _edit(directory / component / "config.json", **change)
    start = time.monotonic()
    with pytest.raises(ValueError, match=rf"{component}/config\.json: {shown}"):
        load_pipeline(directory)
    assert time.monotonic() - start < 2


def test_a_model_directory_config_is_bounded_too(copy_of):
    directory = copy_of("ddpm")
    _edit(directory / "unet" / "config.json", num_layers=10**6, layers_per_block=10**6)
    with pytest.raises(ValueError, match=r"unet/config\.json: layers_per_block.*1000000"):
        load_denoiser(directory / "unet")


def test_a_huge_prompt_length_is_refused_not_aborting_the_process(copy_of):
    directory = copy_of("sd")
    _edit(directory / "tokenizer" / "tokenizer_config.json", model_max_length=10**9)
    with pytest.raises(ValueError, match=r"tokenizer_config\.json: model_max_length.*\[1, 8\].*1000000000"):
        load_pipeline(directory)


def test_an_empty_tokenizer_folder_is_named(copy_of):
    directory = copy_of("sd")
    shutil.rmtree(directory / "tokenizer")
    (directory / "tokenizer").mkdir()
    with pytest.raises(ValueError, match=r"tokenizer holds no vocabulary"):
        load_pipeline(directory)


def test_a_tokenizer_without_its_config_is_named(copy_of):
    directory = copy_of("sd")
    (directory / "tokenizer" / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError, match=r"cannot read .*tokenizer_config\.json"):
        load_pipeline(directory)


# ------------------------------------------------------------ sample sizes as [n, n]
def test_a_square_list_sample_size_loads_as_its_side(copy_of):
    directory = copy_of("ddpm")
    _edit(directory / "unet" / "config.json", sample_size=[8, 8])
    network, _ = load_pipeline(directory)
    assert network.sample_shape == (3, 8, 8)
    assert network.image_size == 8


def test_a_saved_featurizer_without_its_diffrep_config_is_refused_clearly(tmp_path):
    """Without diffrep_config.json, a featurizer's own save reads as a DDPM pipeline: its [8, 12] size is named."""
    images = np.random.default_rng(0).random((6, 1, 8, 12))
    directory = tmp_path / "saved"
    DiffusionFeaturizer(**TINY).fit(images).save_pretrained(directory)
    (directory / "diffrep_config.json").unlink()
    with pytest.raises(ValueError, match=r"unet/config\.json: sample_size \[8, 12\] is not square.*from_pretrained"):
        DiffusionFeaturizer(denoiser=str(directory), device="cpu").fit(np.random.default_rng(0).random((4, 8, 8, 3)))


# ------------------------------------------------------------ schedulers and class names
@pytest.mark.parametrize("name", ["FlowMatchEulerDiscreteScheduler", "EDMEulerScheduler", ["DDPMScheduler"]])
def test_a_scheduler_that_is_not_ddpm_style_is_refused_naming_its_class(copy_of, name):
    directory = copy_of("ddpm")
    _edit(directory / "scheduler" / "scheduler_config.json", _class_name=name)
    with pytest.raises(ValueError, match=r"scheduler_config\.json describes a .*" + str(name)[:12].strip("[")):
        load_pipeline(directory)


@pytest.mark.parametrize(("file", "component"), [("model_index.json", ""), ("config.json", "unet")])
def test_a_list_class_name_is_refused_by_name(copy_of, file, component):
    directory = copy_of("ddpm")
    _edit(directory / component / file, _class_name=["DDPMPipeline", "UNet2DModel"])
    with pytest.raises(ValueError, match=rf"{file}.*\['DDPMPipeline', 'UNet2DModel'\]"):
        load_pipeline(directory)


@pytest.mark.parametrize("file", ["unet/config.json", "tokenizer/tokenizer_config.json", "text_encoder/config.json"])
def test_a_config_that_is_not_json_names_its_file(copy_of, file):
    directory = copy_of("sd")
    (directory / file).write_text("{not json")
    with pytest.raises(ValueError, match=rf"cannot read .*{file}"):
        load_pipeline(directory)


def test_a_dit_without_classes_is_named(copy_of):
    directory = copy_of("dit")
    _edit(directory / "transformer" / "config.json", num_embeds_ada_norm=None)
    with pytest.raises(ValueError, match=r"transformer/config\.json: num_embeds_ada_norm .* got None"):
        load_pipeline(directory)


# ------------------------------------------------------------ the cache key
def test_a_cache_entry_of_another_diffrep_version_is_not_served(tmp_path, monkeypatch):
    images = np.random.default_rng(0).random((6, 1, 8, 8))
    steps = interrupt_training_at(monkeypatch)
    DiffusionFeaturizer(memory=tmp_path, **TINY).fit(images)
    DiffusionFeaturizer(memory=tmp_path, **TINY).fit(images)
    assert len(steps) == TINY["max_steps"], "the same version is served from the cache"
    monkeypatch.setattr(cache, "__version__", "99.0", raising=False)
    DiffusionFeaturizer(memory=tmp_path, **TINY).fit(images)
    assert len(steps) == 2 * TINY["max_steps"], "another version trains again"
    assert len(cached_entries(tmp_path)) == 2, "each version keeps its own entry"
