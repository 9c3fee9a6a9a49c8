"""diffrep: diffusion-model denoisers as scikit-learn feature extractors."""

from .featurizer import DiffusionFeaturizer
from .schedules import NoiseSchedule

__all__ = ["DiffusionFeaturizer", "NoiseSchedule"]
__version__ = "0.1.0"
