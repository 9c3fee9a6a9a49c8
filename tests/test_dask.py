"""A grid search on a dask.distributed cluster shares the denoiser cache between its workers.

Needs the optional extra ``diffrep[dask]``; skipped without it.
"""

import os

import joblib
import pytest

from .helpers import TIMESTEPS, assert_same_scores, cached_entries, grid_search

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'diffrep[dask]')"
)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on the loopback interface."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_dask_workers_train_once_per_fold_and_reuse_the_cache(client, digits_small, tmp_path):
    X, y = digits_small
    timesteps = TIMESTEPS[:4]
    reference = grid_search(X, y, memory=tmp_path / "local", timesteps=timesteps)
    shared = tmp_path / "shared"
    with joblib.parallel_config(backend="dask"):
        first = grid_search(X, y, memory=shared, timesteps=timesteps, n_jobs=2)
    entries = cached_entries(shared)
    assert len(entries) == 3  # one trained denoiser per fold, whichever worker trained it
    assert_same_scores(first, reference)

    written = {path: os.stat(path).st_mtime_ns for path in entries}
    with joblib.parallel_config(backend="dask"):
        second = grid_search(X, y, memory=shared, timesteps=timesteps, n_jobs=2)
    assert {path: os.stat(path).st_mtime_ns for path in cached_entries(shared)} == written  # no retraining
    assert_same_scores(second, reference)
