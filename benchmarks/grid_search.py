"""Grid search over timesteps with and without ``memory``: wall time and denoiser trainings.

Runs ``GridSearchCV(Pipeline([featurizer, LogisticRegression]))`` on sklearn
digits (8x8 images, a small UNet) three ways, 3 folds each, no refit:

* ``single``: one timestep candidate, no cache (3 trainings);
* ``cached``: 8 timestep candidates with ``memory`` in a fresh directory (3 trainings);
* ``uncached``: the same 8 candidates, no cache (24 trainings);

after an untimed warm-up fit, and prints the time and trainings of each, plus
the ratios ``uncached / cached`` and ``cached / single`` (target: at most 1.5).
Searches run with ``n_jobs=1`` so that the training counter, which wraps
``diffrep.featurizer.train_denoiser``, sees every training.

Usage::

    python benchmarks/grid_search.py [--max-steps 100] [--model-width 16] [--device auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import diffrep.featurizer
from diffrep import DiffusionFeaturizer

TIMESTEPS = [25, 50, 100, 150, 200, 300, 400, 600]


def count_trainings():
    """Wrap the featurizer's training function; return the list that counts its calls."""
    calls = []
    original = diffrep.featurizer.train_denoiser

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    diffrep.featurizer.train_denoiser = counting
    return calls


def timed_search(X, y, timesteps, memory, settings, trainings):
    """Wall time and trainings of one 3-fold search over ``timesteps``."""
    pipeline = Pipeline(
        [
            ("feat", DiffusionFeaturizer(image_shape=(1, 8, 8), memory=memory, **settings)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    search = GridSearchCV(pipeline, {"feat__timesteps": timesteps}, cv=3, refit=False, n_jobs=1)
    trainings.clear()
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, len(trainings), search.cv_results_["mean_test_score"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--model-width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    settings = dict(
        max_steps=args.max_steps,
        model_width=args.model_width,
        batch_size=args.batch_size,
        device=args.device,
        random_state=0,
    )
    X, y = load_digits(return_X_y=True)
    DiffusionFeaturizer(image_shape=(1, 8, 8), **dict(settings, max_steps=1)).fit(X[:64])  # warm-up, untimed
    trainings = count_trainings()
    print(f"digits {X.shape}, UNet width {args.model_width}, {args.max_steps} steps, device {args.device}")
    print(f"{'search':<10} {'candidates':>10} {'folds':>5} {'trainings':>9} {'seconds':>8}")
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, timesteps, memory in [
            ("single", TIMESTEPS[:1], None),
            ("cached", TIMESTEPS, cache),  # right after "single": the two compared under similar load
            ("uncached", TIMESTEPS, None),
        ]:
            seconds, n_trained, scores = timed_search(X, y, timesteps, memory, settings, trainings)
            results[name] = (seconds, scores)
            print(f"{name:<10} {len(timesteps):>10} {3:>5} {n_trained:>9} {seconds:>8.1f}")
    same = (results["cached"][1] == results["uncached"][1]).all()
    print(f"scores identical with and without memory: {same}")
    print(f"uncached / cached wall time: {results['uncached'][0] / results['cached'][0]:.2f}x")
    print(f"cached / single wall time:   {results['cached'][0] / results['single'][0]:.2f}x (target <= 1.5)")


if __name__ == "__main__":
    main()
