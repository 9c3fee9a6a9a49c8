"""How far a sample's features move with the batch, the order and the subset it comes in.

The noise each sample gets is a function of the sample alone (``tests/test_noise.py``
checks it bit for bit), but the network's convolutions and matrix products run in
float32 through kernels that torch picks by the shape of the batch, and those sum
in different orders. This script measures what that leaves: for a default UNet on
8x8 digits (all its layers and ``"x0"``) and the MLP on the same 64 columns, the
largest absolute difference between the features of ``transform`` at the default
``batch_size`` and at other batch sizes, in another order, and one sample at a
time, also relative to the largest feature and in units of float32's epsilon
(``2**-23``) times that feature.

Run ``python benchmarks/batch_invariance.py`` (about two CPU-minutes, most of it
training); the user guide quotes its output.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from sklearn.datasets import load_digits

from diffrep import DiffusionFeaturizer

FLOAT32_EPS = float(np.finfo(np.float32).eps)
SETTINGS = {
    "UNet 8x8, all layers": dict(image_shape=(1, 8, 8), layers=("mid_block", "up_blocks.0", "up_blocks.1", "x0")),
    "MLP, 64 columns": dict(denoiser="mlp"),
}


def variants(featurizer, X):
    """Features of ``X`` computed other ways, each put back in the rows of ``X``."""
    order = np.random.default_rng(0).permutation(len(X))
    computed = {
        f"batch_size={size}": copy.deepcopy(featurizer).set_params(batch_size=size).transform(X)
        for size in (1, 7, 64, 1024)
    }
    computed["another order"] = featurizer.transform(X[order])[np.argsort(order)]
    computed["one sample at a time"] = np.concatenate([featurizer.transform(X[i : i + 1]) for i in range(len(X))])
    return computed


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--n-samples", type=int, default=200)
    cli.add_argument("--max-steps", type=int, default=100, help="training steps of each denoiser")
    cli.add_argument("--threads", type=int, default=1)
    args = cli.parse_args()
    torch.set_num_threads(args.threads)
    X = load_digits().data[: args.n_samples]
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s), {len(X)} digits, "
          f"{args.max_steps} training steps, timesteps 0, 25, 100, 400")
    print(f"{'denoiser':22s} {'compared with default':22s} {'max |diff|':>10s} {'/ max |f|':>10s} "
          f"{'eps units':>9s}  bitwise equal")
    for name, params in SETTINGS.items():
        featurizer = DiffusionFeaturizer(
            timesteps=(0, 25, 100, 400), max_steps=args.max_steps, device="cpu", random_state=0, **params
        ).fit(X)
        reference = featurizer.transform(X)
        scale = np.abs(reference).max()
        for variant, features in variants(featurizer, X).items():
            difference = np.abs(features - reference).max()
            print(f"{name:22s} {variant:22s} {difference:10.1e} {difference / scale:10.1e} "
                  f"{difference / scale / FLOAT32_EPS:9.1f}  {np.array_equal(features, reference)}")


if __name__ == "__main__":
    main()
