"""Bringing your own denoiser: diffusers directories, hub ids, torch modules, and save_pretrained."""

import hashlib

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from diffrep import DiffusionFeaturizer, NoiseSchedule
from diffrep.denoisers.loading import is_hub_id

from .helpers import TINY


@pytest.fixture(scope="module")
def images(digits_small):
    return digits_small[0][:30]


@pytest.fixture(scope="module")
def fitted(images):
    return DiffusionFeaturizer(layers=("mid_block", "x0"), image_shape=(1, 8, 8), **TINY).fit(images)


def _tiny_unet(in_channels=1, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(
            sample_size=8,
            in_channels=in_channels,
            out_channels=in_channels,
            block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            layers_per_block=1,
            norm_num_groups=8,
        )


def _digest(directory):
    return {
        path.relative_to(directory): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------- save_pretrained
def test_saved_featurizer_reloads_with_identical_features(fitted, images, tmp_path, training_forbidden):
    fitted.save_pretrained(tmp_path)
    assert (tmp_path / "unet" / "config.json").is_file()
    assert (tmp_path / "scheduler" / "scheduler_config.json").is_file()
    loaded = DiffusionFeaturizer(denoiser=tmp_path, layers=("mid_block", "x0"), image_shape=(1, 8, 8), **TINY)
    loaded.fit(images)
    assert loaded.loss_curve_ == [] and loaded.n_steps_ == 0
    np.testing.assert_array_equal(loaded.transform(images), fitted.transform(images))


def test_saved_schedule_wins_over_the_schedule_parameters(images, tmp_path):
    params = dict(num_train_timesteps=300, beta_schedule="squaredcos_cap_v2", timesteps=(20, 250))
    original = DiffusionFeaturizer(image_shape=(1, 8, 8), **params, **{**TINY, "max_steps": 0}).fit(images)
    original.save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer(denoiser=str(tmp_path), timesteps=(20, 250), image_shape=(1, 8, 8), **TINY)
    loaded.fit(images)
    assert loaded.schedule_.num_train_timesteps == 300
    np.testing.assert_allclose(loaded.sigmas_, original.sigmas_)


def test_mlp_saves_and_reloads(table, tmp_path):
    X = table[0]
    original = DiffusionFeaturizer(layers=("blocks.0", "x0"), **TINY).fit(X)
    original.save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer(denoiser=str(tmp_path), layers=("blocks.0", "x0"), **TINY).fit(X)
    assert type(loaded.network_) is type(original.network_)
    assert loaded.loss_curve_ == []
    np.testing.assert_array_equal(loaded.transform(X), original.transform(X))


def test_save_pretrained_needs_a_diffusers_model(tmp_path):
    oracle = _Oracle(torch.zeros((1, 4, 4)), "sample")
    feat = DiffusionFeaturizer(denoiser=oracle, layers="x0", **TINY).fit(np.zeros((3, 1, 4, 4)))
    with pytest.raises(TypeError, match="save_pretrained needs a diffusers model"):
        feat.save_pretrained(tmp_path)


# ------------------------------------------------------------ diffusers directories
def test_bare_unet_directory_without_scheduler_uses_the_schedule_parameters(images, tmp_path):
    unet = _tiny_unet()
    unet.save_pretrained(tmp_path)
    feat = DiffusionFeaturizer(denoiser=str(tmp_path), num_train_timesteps=200, timesteps=(150,), image_shape=(1, 8, 8))
    feat.set_params(**TINY).fit(images)
    assert feat.schedule_.num_train_timesteps == 200
    assert feat.loss_curve_ == []
    as_module = DiffusionFeaturizer(denoiser=unet, num_train_timesteps=200, timesteps=(150,), image_shape=(1, 8, 8))
    np.testing.assert_array_equal(feat.transform(images), as_module.set_params(**TINY).fit(images).transform(images))
    with pytest.raises(ValueError, match=r"\[0, 199\]"):
        feat.set_params(timesteps=(250,)).fit(images)


def test_bare_unet_directory_with_its_scheduler(images, tmp_path):
    _tiny_unet().save_pretrained(tmp_path)
    DDPMScheduler(num_train_timesteps=50, prediction_type="sample").save_pretrained(tmp_path)
    feat = DiffusionFeaturizer(denoiser=str(tmp_path), timesteps=(40,), image_shape=(1, 8, 8), **TINY).fit(images)
    assert feat.schedule_.num_train_timesteps == 50
    assert feat.schedule_.prediction_type == "sample"


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A diffusers pipeline layout: unet/ and a 500-step scheduler/."""
    directory = tmp_path_factory.mktemp("pipeline")
    _tiny_unet().save_pretrained(directory / "unet")
    DDPMScheduler(num_train_timesteps=500, prediction_type="v_prediction").save_pretrained(directory / "scheduler")
    return directory


def test_pipeline_directory_brings_its_schedule(images, pipeline_dir, training_forbidden):
    feat = DiffusionFeaturizer(denoiser=str(pipeline_dir), timesteps=(499,), image_shape=(1, 8, 8), **TINY)
    feat.fit(images)
    assert feat.schedule_.num_train_timesteps == 500
    assert feat.schedule_.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 499\].*600"):
        feat.set_params(timesteps=(600,)).fit(images)


def test_train_denoiser_true_fine_tunes_a_loaded_model(images, pipeline_dir):
    before = _digest(pipeline_dir)
    as_is = DiffusionFeaturizer(denoiser=str(pipeline_dir), image_shape=(1, 8, 8), **TINY).fit(images)
    tuned = DiffusionFeaturizer(denoiser=str(pipeline_dir), train_denoiser=True, image_shape=(1, 8, 8), **TINY)
    tuned.fit(images)
    assert len(tuned.loss_curve_) == TINY["max_steps"]
    weights = zip(as_is.network_.parameters(), tuned.network_.parameters())
    assert any(not torch.equal(a, b) for a, b in weights)
    assert _digest(pipeline_dir) == before, "fine-tuning must not write to the model directory"


def test_a_fitted_featurizers_frozen_network_can_be_fine_tuned(fitted, images):
    frozen = fitted.network_
    assert not any(p.requires_grad for p in frozen.parameters())
    tuned = DiffusionFeaturizer(denoiser=frozen, train_denoiser=True, image_shape=(1, 8, 8), **TINY).fit(images)
    assert len(tuned.loss_curve_) == TINY["max_steps"]
    assert not any(p.requires_grad for p in frozen.parameters()), "the passed module must stay untouched"


def test_loaded_image_model_needs_images_of_its_channels(images, pipeline_dir, training_forbidden):
    with pytest.raises(ValueError, match=r"denoiser=.*takes images with 1 channel.*image_shape"):
        DiffusionFeaturizer(denoiser=str(pipeline_dir), **TINY).fit(images)
    with pytest.raises(ValueError, match="takes images with 1 channel"):
        DiffusionFeaturizer(denoiser=str(pipeline_dir), **TINY).fit(np.zeros((4, 3, 8, 8)))


def test_hub_id_goes_through_the_same_loader(images, pipeline_dir, monkeypatch):
    """Only the model and scheduler files are downloaded, each request with a timeout."""
    import types

    import huggingface_hub

    from diffrep.denoisers import loading

    files = sorted(str(path.relative_to(pipeline_dir)) for path in pipeline_dir.rglob("*") if path.is_file())
    requests = []

    def model_info(self, repo_id, timeout=None, **kwargs):
        requests.append(("info", repo_id, timeout))
        names = files + ["vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"]
        return types.SimpleNamespace(sha="a" * 40, siblings=[types.SimpleNamespace(rfilename=n) for n in names])

    def hf_hub_download(repo_id, filename, revision=None, etag_timeout=None, **kwargs):
        requests.append((filename, revision, etag_timeout))
        return str(pipeline_dir / filename)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    feat = DiffusionFeaturizer(denoiser="someone/tiny-ddpm", image_shape=(1, 8, 8), **TINY).fit(images)
    assert requests[0] == ("info", "someone/tiny-ddpm", loading.HUB_TIMEOUT)
    assert sorted(name for name, _, _ in requests[1:]) == files  # no vae/, no text_encoder/
    assert all(request[1:] == ("a" * 40, loading.HUB_TIMEOUT) for request in requests[1:])
    assert feat.schedule_.num_train_timesteps == 500


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("owner/name", True),
        ("google/ddpm-cifar10-32", True),
        ("name", False),
        ("a/b/c", False),
        ("owner/", False),
        ("./owner/name", False),
        ("/owner/name", False),
        ("~/name", False),
    ],
)
def test_is_hub_id(source, expected):
    assert is_hub_id(source) is expected


def test_existing_path_is_never_a_hub_id(tmp_path, monkeypatch):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("owner/name")


# ------------------------------------------------------------------- torch modules
class _Oracle(torch.nn.Module):
    """A denoiser that knows the clean image ``x0`` and returns the exact prediction reconstructing it.

    ``abar`` comes from diffusers directly, so the test checks diffrep's conversion
    against an independent source.
    """

    def __init__(self, x0, prediction_type):
        super().__init__()
        self.prediction_type = prediction_type
        self.register_buffer("x0", x0.double())
        self.register_buffer("abar", DDPMScheduler(num_train_timesteps=1000).alphas_cumprod.double())
        self.head = torch.nn.Identity()

    def forward(self, x_t, t):
        abar = self.abar[t].reshape(-1, 1, 1, 1)
        epsilon = (x_t.double() - abar.sqrt() * self.x0) / (1 - abar).sqrt()
        prediction = {
            "epsilon": epsilon,
            "sample": self.x0.expand_as(epsilon),
            "v_prediction": abar.sqrt() * epsilon - (1 - abar).sqrt() * self.x0,
        }[self.prediction_type]
        return self.head(prediction.to(x_t.dtype))


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_x0_source_recovers_the_clean_image_for_every_prediction_type(prediction_type):
    rng = np.random.default_rng(0)
    x0 = torch.from_numpy(rng.uniform(-1, 1, size=(3, 4, 4)))
    X = rng.uniform(-1, 1, size=(5, 3, 4, 4))
    feat = DiffusionFeaturizer(
        denoiser=_Oracle(x0, prediction_type), layers="x0", pooling="none", scaling="none",
        timesteps=(5, 100, 500), **TINY,
    ).fit(X)
    assert feat.schedule_.prediction_type == prediction_type
    assert feat.loss_curve_ == [], "a passed-in module is used as is"
    expected = np.tile(x0.numpy().ravel(), (len(X), 3))
    np.testing.assert_allclose(feat.transform(X), expected, atol=1e-4)


def test_module_prediction_type_wins_over_the_parameter():
    x0 = torch.zeros((1, 4, 4))
    X = np.zeros((3, 1, 4, 4))
    oracle = _Oracle(x0, "sample")
    feat = DiffusionFeaturizer(denoiser=oracle, prediction_type="epsilon", layers="head", **TINY).fit(X)
    assert feat.schedule_.prediction_type == "sample"
    assert feat.network_ is not oracle


def test_module_noise_schedule_defines_the_valid_timesteps():
    oracle = _Oracle(torch.zeros((1, 4, 4)), "sample")
    oracle.noise_schedule = NoiseSchedule(num_train_timesteps=100, prediction_type="sample")
    X = np.zeros((3, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 99\]"):
        DiffusionFeaturizer(denoiser=oracle, timesteps=(150,), layers="x0", **TINY).fit(X)
    feat = DiffusionFeaturizer(denoiser=oracle, timesteps=(99,), layers="x0", **TINY).fit(X)
    assert feat.schedule_.num_train_timesteps == 100


@pytest.mark.parametrize("frozen", [False, True], ids=["fitted by the ensemble", "frozen"])
def test_an_ensemble_takes_timesteps_of_a_loaded_2000_step_schedule(digits_small, tmp_path, frozen):
    from sklearn.frozen import FrozenEstimator

    from diffrep import NoiseEnsembleClassifier

    _tiny_unet().save_pretrained(tmp_path / "unet")  # a model directory: unet/ + scheduler/
    DDPMScheduler(num_train_timesteps=2000).save_pretrained(tmp_path / "scheduler")
    X, y = digits_small
    featurizer = DiffusionFeaturizer(denoiser=tmp_path, image_shape=(1, 8, 8), **TINY)  # num_train_timesteps=1000
    if frozen:
        featurizer = FrozenEstimator(featurizer.fit(X))
    ensemble = NoiseEnsembleClassifier(featurizer, timesteps=(10, 1500), selection="all", cv=2, random_state=0)
    assert ensemble.fit(X, y).selected_timesteps_ == (10, 1500)
    with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 1999\]"):
        NoiseEnsembleClassifier(featurizer, timesteps=(10, 2000), cv=2).fit(X, y)
