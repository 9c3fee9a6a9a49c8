"""diffrep: diffusion-model denoisers as scikit-learn feature extractors.

Public names are imported lazily, so ``import diffrep`` (or the numpy-only theory
in :mod:`diffrep.theory`) does not load torch and
diffusers until an estimator that needs them is used.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "DiffusionFeaturizer": "diffrep.featurizer",
    "NoiseSchedule": "diffrep.schedules",
    "NoiseEnsembleClassifier": "diffrep.ensemble",
    "NoiseEnsembleRegressor": "diffrep.ensemble",
    "representation_curve": "diffrep.curves",
    "corrupt_labels": "diffrep.label_noise",
    "label_noise_study": "diffrep.label_noise",
    "generalization_report": "diffrep.generalization",
    "training_size_study": "diffrep.generalization",
    "make_molrg": "diffrep.theory.model",
    "MoLRGDenoiser": "diffrep.theory.denoisers",
    "LearnedMoLRGDenoiser": "diffrep.theory.denoisers",
    "MLPDenoiser": "diffrep.denoisers.mlp",
    "representation_snr": "diffrep.theory.metrics",
    "theoretical_snr": "diffrep.theory.metrics",
    "SubspaceClassifier": "diffrep.theory.metrics",
    "load_digit_images": "diffrep.datasets",
    "LogisticProbeCV": "diffrep.probes",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'diffrep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
