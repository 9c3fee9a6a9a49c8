"""A tabular data set with the MLP denoiser.

For 2-D input without ``image_shape``, ``DiffusionFeaturizer`` trains a residual
MLP denoiser on the standardized columns. Its capturable layers are ``"input"``,
``"blocks.0"`` .. ``"blocks.2"`` and ``"output_norm"``; the default is the middle
block. The script compares features at a few timesteps with logistic
regression on the raw columns, on scikit-learn's breast-cancer data (no download).
With ``memory=``, the six settings share one training per fold: timesteps and
layers do not change what the denoiser learns.

Run::

    python examples/tabular_mlp.py            # under a minute on 2 CPU cores
    python examples/tabular_mlp.py --quick    # seconds
"""

import argparse
import tempfile

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from diffrep import DiffusionFeaturizer
from diffrep.probes import default_probe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short training, seconds")
    args = parser.parse_args(argv)
    X, y = load_breast_cancer(return_X_y=True)
    max_steps = 30 if args.quick else 1000
    print(f"raw columns: {cross_val_score(default_probe(), X, y, cv=3).mean():.3f}")
    scores = {}
    with tempfile.TemporaryDirectory() as memory:
        for layers in (("blocks.1",), ("input", "blocks.1", "output_norm")):
            for timesteps in ((10,), (50,), (10, 50, 200)):
                feat = DiffusionFeaturizer(
                    timesteps=timesteps, layers=layers, max_steps=max_steps, random_state=0, memory=memory
                )
                scores[layers, timesteps] = cross_val_score(make_pipeline(feat, default_probe()), X, y, cv=3).mean()
                print(f"layers={list(layers)} timesteps={list(timesteps)}: {scores[layers, timesteps]:.3f}")
    return scores


if __name__ == "__main__":
    main()
