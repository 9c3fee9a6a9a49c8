"""Features from a pretrained diffusers model loaded from a local directory.

``denoiser=`` accepts a diffusers model directory (``config.json`` + weights) or a
pipeline directory (``unet/`` + ``scheduler/``), or a hub id (``"owner/name"``,
downloaded first, then loaded the same way). The directory's scheduler config
defines the noise schedule and nothing is trained unless ``train_denoiser=True``.

This script makes its own pipeline directory (no network needed): it trains a
small UNet on digits, exports it with ``save_pretrained``, shows that diffusers
itself can read the export, and loads it back as a featurizer. Point
``--model`` at any other local UNet2DModel pipeline directory to use that one.

Run::

    python examples/pretrained_local.py            # under a minute
    python examples/pretrained_local.py --quick    # seconds
"""

import argparse
import tempfile

import numpy as np
from diffusers import DDPMScheduler, UNet2DModel
from sklearn.datasets import load_digits

from diffrep import DiffusionFeaturizer


def export_small_model(directory, X, max_steps):
    """Train a small UNet on ``X`` and save it as a diffusers pipeline directory."""
    trained = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=max_steps, model_width=16, random_state=0)
    trained.fit(X)
    trained.save_pretrained(directory)
    return trained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a local diffusers pipeline or model directory (default: make one)")
    parser.add_argument("--quick", action="store_true", help="300 digits and a short training, seconds")
    args = parser.parse_args(argv)
    X, _ = load_digits(return_X_y=True)
    if args.quick:
        X = X[:300]
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.model
        if directory is None:
            directory = scratch
            original = export_small_model(directory, X, 20 if args.quick else 500)
            unet = UNet2DModel.from_pretrained(f"{directory}/unet")
            scheduler = DDPMScheduler.from_pretrained(f"{directory}/scheduler")
            print(f"diffusers reads the export: {type(unet).__name__}, {scheduler.config.num_train_timesteps} steps")
        feat = DiffusionFeaturizer(denoiser=directory, image_shape=(1, 8, 8), timesteps=(25, 100), random_state=0)
        Z = feat.fit_transform(X)
        print(f"loaded {type(feat.network_).__name__}; trained steps: {feat.n_steps_}; features {Z.shape}")
        for name, info in feat.feature_info_.items():
            print(f"  {name}: channels={info['channels']} spatial={info['spatial']}")
        if args.model is None:
            same = np.allclose(Z, original.set_params(timesteps=(25, 100)).fit(X).transform(X), atol=1e-5)
            print(f"identical to the featurizer that exported it: {same}")
    return Z


if __name__ == "__main__":
    main()
