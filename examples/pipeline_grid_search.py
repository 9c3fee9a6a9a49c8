"""Grid search over noise levels in a Pipeline, training the denoiser once per fold.

``DiffusionFeaturizer(memory=...)`` caches the trained denoiser under a
fingerprint of the training data and the training settings only, so the
candidates of ``GridSearchCV`` (which differ only in ``timesteps``) share one
trained denoiser per fold instead of retraining it for every candidate.

Run::

    python examples/pipeline_grid_search.py            # about a minute on 2 CPU cores
    python examples/pipeline_grid_search.py --quick    # seconds
"""

import argparse
import tempfile
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from diffrep import DiffusionFeaturizer
from diffrep.probes import default_probe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and data, seconds")
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    n_samples, max_steps, width = (150, 10, 8) if args.quick else (1200, 400, 32)
    X, y = X[:n_samples], y[:n_samples]
    with tempfile.TemporaryDirectory() as cache:
        pipeline = Pipeline([
            ("feat", DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=max_steps, model_width=width,
                                         memory=cache, random_state=0)),
            ("probe", default_probe()),
        ])
        search = GridSearchCV(pipeline, {"feat__timesteps": [(0,), (10,), (50,), (100,), (400,)]}, cv=3)
        start = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - start
    print(f"{'timesteps':>10}  {'mean CV accuracy':>16}")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"{str(params['feat__timesteps']):>10}  {score:>16.3f}")
    print(f"best: {search.best_params_} ({search.best_score_:.3f}); search took {seconds:.1f} s")
    return search


if __name__ == "__main__":
    main()
