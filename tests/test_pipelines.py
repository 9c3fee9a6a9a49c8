"""Pretrained pipelines saved whole: DiT, Stable Diffusion and DDPM directories, real images and image files.

Every pipeline here is a tiny random-weight model of the real classes, built
and saved by the fixtures (no download): the code paths of
``facebook/DiT-XL-2-256``, ``stabilityai/stable-diffusion-2-1-base`` and
``google/ddpm-cifar10-32`` at a few channels and 16x16 (8x8) images.
"""

import json
import pickle
import shutil
import sys

import numpy as np
import pytest
import torch

from diffrep._engine import inputs
import diffrep.images
from diffrep import DiffusionFeaturizer
from diffrep.denoisers.pipeline_files import pipeline_hub_files
from diffrep.denoisers.pipelines import SUPPORTED_PIPELINES

pytest.importorskip("transformers", reason="the Stable Diffusion text encoder needs transformers (the text extra)")

FAMILIES = ("dit", "sd", "ddpm")
SETTINGS = dict(timesteps=(10, 200), device="cpu", random_state=0)


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def _vae():
    from diffusers import AutoencoderKL

    blocks = ("DownEncoderBlock2D", "DownEncoderBlock2D")
    return AutoencoderKL(
        block_out_channels=(8, 8),
        down_block_types=blocks,
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=16,
    )


def _save_dit(directory):
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    transformer = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=3,
        sample_size=8, patch_size=2, num_embeds_ada_norm=10,
    )
    DiTPipeline(transformer=transformer, vae=_vae(), scheduler=DDIMScheduler()).save_pretrained(directory)
    # The hub's DiT checkpoints name the legacy class, which diffusers maps to DiTTransformer2DModel.
    config = directory / "transformer" / "config.json"
    config.write_text(json.dumps(dict(json.loads(config.read_text()), _class_name="Transformer2DModel")))


def _tokenizer(directory):
    """A CLIP tokenizer from vocabulary and merges files written here."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "b</w>": 3, "a": 4, "b": 5, "ab</w>": 6}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\na b</w>\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=8)


def _save_stable_diffusion(directory, scratch):
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=7, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=8, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    StableDiffusionPipeline(
        vae=_vae(), text_encoder=text_encoder, tokenizer=_tokenizer(scratch), unet=unet,
        scheduler=PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(directory)


def _save_ddpm(directory):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    )
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(directory)


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """Directories of a tiny DiT, Stable Diffusion and DDPM pipeline, by family."""
    root = tmp_path_factory.mktemp("pipelines")
    scratch = tmp_path_factory.mktemp("tokenizer")
    _seeded(lambda: _save_dit(root / "dit"))
    _seeded(lambda: _save_stable_diffusion(root / "sd", scratch))
    _seeded(lambda: _save_ddpm(root / "ddpm"))
    return {family: root / family for family in FAMILIES}


@pytest.fixture(scope="module")
def photos():
    """Five RGB photos, channels last, floats in [0, 1], 20x24 (neither square nor the models' size)."""
    return np.random.default_rng(0).random((5, 20, 24, 3)).astype(np.float32)


def _fit(directory, photos, **params):
    return DiffusionFeaturizer(denoiser=str(directory), **dict(SETTINGS, **params)).fit(photos)


# ------------------------------------------------------------------ the must-shows
@pytest.mark.parametrize("family", FAMILIES)
def test_images_of_several_sizes_give_deterministic_finite_order_free_features(pipelines, photos, family):
    feat = _fit(pipelines[family], photos)
    again = _fit(pipelines[family], photos)
    channels_first = np.random.default_rng(1).random((4, 3, 9, 13))  # float64, smaller than the model's size
    eight_bit = (np.random.default_rng(2).random((3, 40, 32, 3)) * 255).astype(np.uint8)
    for images in (photos, channels_first, eight_bit):
        features = feat.transform(images)
        assert features.dtype == np.float32 and np.isfinite(features).all()
        assert features.shape == (len(images), feat.get_feature_names_out().size)
        np.testing.assert_array_equal(features, again.transform(images))
        np.testing.assert_array_equal(features[::-1], feat.transform(images[::-1]))
        rounding = 16 * np.finfo(np.float32).eps * np.abs(features).max()  # batch shapes pick the float32 kernels
        np.testing.assert_allclose(features[1:2], feat.transform(images[1:2]), rtol=1e-5, atol=rounding)
    assert not np.allclose(feat.transform(photos[:1]), feat.transform(photos[1:2]))


@pytest.mark.parametrize("family", FAMILIES)
def test_early_stop_equals_the_full_pass(pipelines, photos, family):
    stopped = _fit(pipelines[family], photos)
    full = _fit(pipelines[family], photos, layers=(*stopped.layers_, "x0"))
    width = stopped.feature_info_[stopped.layers_[0]]["n_features"]
    per_timestep = full.transform(photos).reshape(len(photos), 2, -1)
    np.testing.assert_allclose(
        stopped.transform(photos).reshape(len(photos), 2, -1), per_timestep[:, :, :width], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_image_files_are_read_batch_by_batch_and_match_the_pixels(pipelines, tmp_path, monkeypatch, family):
    from PIL import Image

    pd = pytest.importorskip("pandas")
    pixels = (np.random.default_rng(3).random((5, 18, 22, 3)) * 255).astype(np.uint8)
    paths = []
    for index, image in enumerate(pixels):
        paths.append(tmp_path / f"photo{index}.png")
        Image.fromarray(image).save(paths[-1])
    feat = _fit(pipelines[family], pd.Series(map(str, paths)), batch_size=4)
    batches = []
    real = diffrep.images.read_image_file
    monkeypatch.setattr(diffrep.images, "read_image_file", lambda path, **kw: batches.append(path) or real(path, **kw))
    from_files = feat.transform(pd.DataFrame({"file": paths})["file"])
    assert feat.n_features_in_ == 1 and len(batches) == len(paths)
    np.testing.assert_allclose(from_files, feat.transform(pixels), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(from_files, feat.transform(paths))  # a list of pathlib.Path


def test_files_are_read_only_when_their_batch_comes(pipelines, photos, tmp_path, monkeypatch):
    feat = _fit(pipelines["ddpm"], photos, batch_size=4)  # two timesteps: two images per forward pass
    sizes = []
    real = inputs.load_batch
    monkeypatch.setattr(inputs, "load_batch", lambda batch, size: sizes.append(len(batch)) or real(batch, size))
    feat.transform(photos)
    assert sizes == [2, 2, 1]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda directory: directory / "missing.png", "missing.png"),
        (lambda directory: directory / "notes.png", "notes.png"),
    ],
)
def test_a_missing_or_unreadable_file_is_named(pipelines, photos, tmp_path, make, problem):
    (tmp_path / "notes.png").write_text("not an image")
    feat = _fit(pipelines["dit"], photos)
    with pytest.raises(ValueError, match=f"cannot read the image file .*{problem}"):
        feat.transform([str(make(tmp_path))])


@pytest.mark.parametrize(
    ("images", "problem"),
    [
        (np.zeros((2, 64)), "1-D sequence of image file paths"),
        (np.zeros((2, 5, 8, 8)), "1-D sequence of image file paths"),
        (np.full((2, 8, 8, 3), 2.0), r"outside \[0, 1\]"),
        (np.full((2, 8, 8, 3), 300), r"outside \[0, 255\]"),
        (np.zeros((0, 8, 8, 3)), "no images"),
    ],
)
def test_bad_images_are_refused_naming_x(pipelines, photos, images, problem):
    feat = _fit(pipelines["ddpm"], photos)
    with pytest.raises(ValueError, match=f"X.*{problem}|{problem}"):
        feat.transform(images)


def test_the_users_images_are_not_modified(pipelines, photos):
    before = photos.copy()
    _fit(pipelines["sd"], photos).transform(photos)
    np.testing.assert_array_equal(photos, before)


# ------------------------------------------------------------------ layers
def test_default_layers_per_family(pipelines, photos):
    layers = {family: _fit(pipelines[family], photos).layers_ for family in FAMILIES}
    assert layers == {"dit": ("transformer_blocks.1",), "sd": ("up_blocks.1",), "ddpm": ("mid_block",)}


def test_transformer_tokens_are_pooled_over_tokens_or_laid_on_the_patch_grid(pipelines, photos):
    mean = _fit(pipelines["dit"], photos, timesteps=(50,), layers="transformer_blocks.0", pooling="mean")
    grid = _fit(pipelines["dit"], photos, timesteps=(50,), layers="transformer_blocks.0", pooling="none")
    assert grid.feature_info_["transformer_blocks.0"] == {
        "shape": (16, 4, 4), "channels": 16, "spatial": (4, 4), "cells": (4, 4), "n_features": 256,
    }
    maps = grid.transform(photos).reshape(len(photos), 16, 16)
    assert mean.feature_info_["transformer_blocks.0"]["cells"] == (4, 4)  # the default grid on the 4x4 patches
    np.testing.assert_allclose(mean.transform(photos), maps.reshape(len(photos), -1), rtol=1e-5, atol=1e-6)
    whole = _fit(pipelines["dit"], photos, timesteps=(50,), layers="transformer_blocks.0", pooling="mean", pooling_grid=1)
    np.testing.assert_allclose(whole.transform(photos), maps.mean(axis=2), rtol=1e-5, atol=1e-6)


def test_blocks_keep_their_names_and_unknown_ones_are_listed(pipelines, photos):
    with pytest.raises(ValueError, match=r"valid names include .*'transformer_blocks.0'"):
        _fit(pipelines["dit"], photos, layers="transformer.transformer_blocks.0")


# ------------------------------------------------------------------ conditioning
def test_dit_class_condition(pipelines, photos):
    null = _fit(pipelines["dit"], photos).transform(photos)
    cat = _fit(pipelines["dit"], photos, condition=3).transform(photos)
    assert not np.allclose(null, cat)
    with pytest.raises(ValueError, match=r"condition must be a class id in \[0, 9\]"):
        _fit(pipelines["dit"], photos, condition=10)
    with pytest.raises(TypeError, match="condition must be None or a class id"):
        _fit(pipelines["dit"], photos, condition="cat")


def test_stable_diffusion_prompt_condition(pipelines, photos):
    empty = _fit(pipelines["sd"], photos)
    prompted = _fit(pipelines["sd"], photos, condition="ab a")
    assert not np.allclose(empty.transform(photos), prompted.transform(photos))
    assert not hasattr(empty.network_, "text_encoder")  # the embedding is cached, the encoder dropped
    with pytest.raises(TypeError, match="condition must be None or a prompt"):
        _fit(pipelines["sd"], photos, condition=3)


def test_condition_must_be_none_elsewhere(pipelines, photos, digits_small):
    with pytest.raises(ValueError, match="condition must be None"):
        _fit(pipelines["ddpm"], photos, condition=1)
    with pytest.raises(ValueError, match="condition applies to pretrained DiT"):
        DiffusionFeaturizer(condition="a cat", max_steps=1).fit(digits_small[0])


# ------------------------------------------------------------------ loading
def test_an_unsupported_pipeline_lists_the_supported_ones(pipelines, photos, tmp_path):
    directory = tmp_path / "flux"
    shutil.copytree(pipelines["ddpm"], directory)
    index = directory / "model_index.json"
    index.write_text(json.dumps(dict(json.loads(index.read_text()), _class_name="FluxPipeline")))
    with pytest.raises(ValueError, match="'FluxPipeline'.*" + ".*".join(SUPPORTED_PIPELINES)):
        _fit(directory, photos)


def test_stable_diffusion_without_transformers_names_the_extra(pipelines, photos, tmp_path, monkeypatch):
    directory = tmp_path / "sd"
    shutil.copytree(pipelines["sd"], directory)  # a new directory: not served from the loaded registry
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"diffrep\[text\]"):
        _fit(directory, photos)


def test_a_pipeline_is_not_fine_tuned(pipelines, photos):
    with pytest.raises(ValueError, match="train_denoiser must be 'auto' or False"):
        _fit(pipelines["dit"], photos, train_denoiser=True)


def test_hub_pipeline_downloads_only_what_it_loads(pipelines, photos, monkeypatch):
    import types

    import huggingface_hub

    directory = pipelines["dit"]
    files = sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file())
    extras = ["transformer/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.fp16.safetensors", "README.md"]
    downloaded = []

    def model_info(self, repo_id, timeout=None, **kwargs):
        names = files + extras
        return types.SimpleNamespace(sha="b" * 40, siblings=[types.SimpleNamespace(rfilename=n) for n in names])

    def hf_hub_download(repo_id, filename, revision=None, etag_timeout=None, **kwargs):
        downloaded.append(filename)
        return str(directory / filename)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    feat = DiffusionFeaturizer(denoiser="someone/tiny-dit", **SETTINGS).fit(photos)
    assert sorted(downloaded) == files == pipeline_hub_files(files + extras)
    np.testing.assert_array_equal(feat.transform(photos), _fit(directory, photos).transform(photos))


# ------------------------------------------------------------------ precision, pickling
def test_bfloat16_features_are_close_to_float32(pipelines, photos):
    exact = _fit(pipelines["dit"], photos).transform(photos)
    fast = _fit(pipelines["dit"], photos, precision="bfloat16").transform(photos)
    assert np.linalg.norm(fast - exact) / np.linalg.norm(exact) < 0.1


def test_a_fitted_pipeline_featurizer_pickles(pipelines, photos):
    feat = _fit(pipelines["sd"], photos)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(feat)).transform(photos), feat.transform(photos))


def test_a_pipeline_module_is_copied_not_modified(pipelines, photos):
    from diffrep.denoisers.pipelines import load_pipeline

    module, _ = load_pipeline(pipelines["sd"])
    feat = DiffusionFeaturizer(denoiser=module, **SETTINGS).fit(photos)
    assert hasattr(module, "text_encoder") and module.prompt_embedding is None
    np.testing.assert_array_equal(feat.transform(photos), _fit(pipelines["sd"], photos).transform(photos))
