"""One description of the denoiser, resolved in ``fit``: what it declares, read once, in one place."""

import dataclasses
import pathlib
import pickle
import re

import numpy as np
import pytest
import torch
from torch import nn

import diffrep
from diffrep import DiffusionFeaturizer
from diffrep.denoisers.description import DenoiserDescription, describe_denoiser
from diffrep.schedules import NoiseSchedule

from .helpers import TINY

PROTOCOL = ("prediction_type", "noise_schedule", "default_layers", "token_activations", "input_scaling", "up_blocks")


class _Declaring(nn.Module):
    """A vector denoiser declaring every optional attribute of the denoiser protocol."""

    prediction_type = "sample"
    default_layers = ("hidden",)
    token_activations = True
    input_scaling = "none"

    def __init__(self, n_features=4):
        super().__init__()
        self.noise_schedule = NoiseSchedule(50, "linear")  # predicts epsilon: the declared type must win
        self.hidden = nn.Linear(n_features, n_features)

    def forward(self, x, t):
        return self.hidden(x)


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 4)

    def forward(self, x, t):
        return self.hidden(x)


def _describe(network, sample_shape=(4,), schedule=None, prediction_type="epsilon"):
    return describe_denoiser(
        network, schedule, sample_shape, num_train_timesteps=100, beta_schedule="linear",
        prediction_type=prediction_type,
    )


def test_a_declaring_module_is_described_by_what_it_declares():
    description = _describe(_Declaring())
    assert description.default_layers == ("hidden",)
    assert description.token_activations is True
    assert description.input_scaling == "none"
    assert description.reads_images is False and description.image_size is None
    assert description.schedule.num_train_timesteps == 50
    assert description.prediction_type == "sample"


@pytest.mark.parametrize(
    ("sample_shape", "scaling"), [((4,), "standard"), ((1, 2, 2), "minmax")], ids=["table", "images"]
)
def test_a_plain_module_gets_the_featurizer_parameters_and_the_defaults(sample_shape, scaling):
    description = _describe(_Plain(), sample_shape, prediction_type="v_prediction")
    assert description.default_layers == ("x0",)
    assert description.token_activations is False
    assert description.input_scaling == scaling
    assert description.schedule.num_train_timesteps == 100
    assert description.prediction_type == "v_prediction"
    assert description.sample_shape == sample_shape


def test_the_description_is_frozen():
    description = _describe(_Plain())
    with pytest.raises(dataclasses.FrozenInstanceError):
        description.default_layers = ("hidden",)


def test_a_fitted_featurizer_holds_its_description(table):
    X, _ = table
    featurizer = DiffusionFeaturizer(denoiser=_Declaring(X.shape[1]), timesteps=(10,), **TINY).fit(X)
    description = featurizer.denoiser_description_
    assert isinstance(description, DenoiserDescription)
    assert description.schedule is featurizer.schedule_
    assert featurizer.layers_ == ("hidden",) and featurizer.scaler_.kind == "none"
    assert description.sample_shape == featurizer.sample_shape_ == (X.shape[1],)


def test_the_description_survives_pickling_and_saving(table, tmp_path):
    X, _ = table
    featurizer = DiffusionFeaturizer(denoiser="mlp", timesteps=(10,), **TINY).fit(X)
    unpickled = pickle.loads(pickle.dumps(featurizer)).denoiser_description_
    featurizer.save_pretrained(tmp_path)
    loaded = DiffusionFeaturizer.from_pretrained(tmp_path, device="cpu").denoiser_description_
    for copy in (unpickled, loaded):
        for field in ("default_layers", "token_activations", "input_scaling", "reads_images", "sample_shape"):
            assert getattr(copy, field) == getattr(featurizer.denoiser_description_, field), field
        np.testing.assert_array_equal(copy.schedule.alphas_cumprod, featurizer.schedule_.alphas_cumprod)


def test_no_module_but_the_description_probes_the_denoiser_protocol():
    """The optional attributes of a denoiser are read in one place; the estimators and engine ask the description."""
    package = pathlib.Path(diffrep.__file__).parent
    probe = re.compile(r"getattr\([^,]+,\s*[\"'](" + "|".join(PROTOCOL) + r")[\"']")
    probing = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "description.py" and probe.search(path.read_text())
    ]
    assert probing == []
