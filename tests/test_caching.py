"""A grid search over timesteps, layers or pooling trains the denoiser once per fold with ``memory``."""

import copy
import errno
import json
import os

import joblib
import numpy as np
import pytest
import torch

from diffrep.exceptions import CacheWarning
import diffrep._engine.cache as caching
import diffrep._engine.training_config as training_config
import diffrep.denoisers.registry as registry
from diffrep import DiffusionFeaturizer
from diffrep.denoisers.mlp import MLPDenoiser

from .helpers import TABLE, TIMESTEPS, TINY, _WritesMarker, assert_same_scores, cached_entries, grid_search

PRETRAINED = dict(device="cpu", random_state=0)


def assert_same_fit(fitted, reference, X):
    """Identical network weights, loss curve, noise seed and features."""
    assert fitted.loss_curve_ == reference.loss_curve_
    assert fitted.noise_seed_ == reference.noise_seed_
    state, reference_state = fitted.network_.state_dict(), reference.network_.state_dict()
    assert state.keys() == reference_state.keys()
    assert all(torch.equal(state[name], reference_state[name]) for name in state)
    np.testing.assert_array_equal(fitted.transform(X), reference.transform(X))


def test_grid_search_trains_once_per_fold(digits_small, trainings, tmp_path):
    X, y = digits_small
    cached = grid_search(X, y, memory=tmp_path)
    assert len(trainings) == 3
    assert len(cached_entries(tmp_path)) == 3
    trainings.clear()
    plain = grid_search(X, y, memory=None)
    assert len(trainings) == len(TIMESTEPS) * 3
    assert_same_scores(cached, plain)


@pytest.mark.parametrize(
    "change",
    [
        dict(timesteps=(20, 700)),
        dict(layers=("blocks.0", "x0")),
        dict(pooling="max"),
        dict(n_noise_draws=2),
        dict(verbose=1),
        dict(device="auto"),
    ],
    ids=lambda change: next(iter(change)),
)
def test_settings_that_do_not_affect_training_reuse_it(change, table, trainings, tmp_path):
    X, _ = table
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    reused = DiffusionFeaturizer(memory=tmp_path, **{**TABLE, **change}).fit(X)
    assert len(trainings) == 1
    fresh = DiffusionFeaturizer(**{**TABLE, **change}).fit(X)
    assert_same_fit(reused, fresh, X)
    assert reused.network_.training is False
    assert next(reused.network_.parameters()).device.type == reused.device_.type


@pytest.mark.parametrize(
    "change",
    [
        dict(max_steps=4),
        dict(batch_size=32),
        dict(learning_rate=2e-3),
        dict(ema_decay=0.5),
        dict(random_state=1),
        dict(model_width=16),
        dict(num_train_timesteps=500),
        dict(beta_schedule="squaredcos_cap_v2"),
        dict(prediction_type="sample"),
        dict(scaling="minmax"),
    ],
    ids=lambda change: next(iter(change)),
)
def test_changed_training_setting_never_hits_a_stale_entry(change, table, trainings, tmp_path):
    X, _ = table
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    changed = DiffusionFeaturizer(memory=tmp_path, **{**TABLE, **change}).fit(X)
    assert len(trainings) == 2
    assert len(cached_entries(tmp_path)) == 2
    assert_same_fit(changed, DiffusionFeaturizer(**{**TABLE, **change}).fit(X), X)


def test_changed_data_never_hits_a_stale_entry(table, trainings, tmp_path):
    X, _ = table
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(np.asfortranarray(X.copy()))
    assert len(trainings) == 1  # equal values, another array: the same data
    changed = X.copy()
    changed[0, 0] += 0.5
    refit = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(changed)
    assert len(trainings) == 2
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X[:-1])
    assert len(trainings) == 3
    assert_same_fit(refit, DiffusionFeaturizer(**TABLE).fit(changed), changed)


def test_training_data_is_hashed_once_per_fit(table, monkeypatch, tmp_path):
    X, _ = table
    hashed = []
    original = training_config.fingerprint_array

    def recording(array):
        hashed.append(array.shape)
        return original(array)

    monkeypatch.setattr(training_config, "fingerprint_array", recording)
    DiffusionFeaturizer(**TABLE).fit(X)
    assert hashed == []
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    assert hashed.count(X.shape) == 1


def test_module_denoisers_are_keyed_by_their_weights_not_identity(table, trainings, tmp_path):
    X, _ = table
    network = MLPDenoiser(n_features=X.shape[1], width=8)
    before = copy.deepcopy(network.state_dict())
    settings = dict(TINY, train_denoiser=True, memory=tmp_path)
    first = DiffusionFeaturizer(denoiser=network, **settings).fit(X)
    DiffusionFeaturizer(denoiser=copy.deepcopy(network), **settings).fit(X)
    assert len(trainings) == 1
    edited = copy.deepcopy(network)
    with torch.no_grad():
        edited.output.bias.add_(1.0)
    DiffusionFeaturizer(denoiser=edited, **settings).fit(X)
    assert len(trainings) == 2
    assert all(torch.equal(before[name], value) for name, value in network.state_dict().items())
    assert first.network_ is not network


def test_every_cache_hit_is_an_independent_copy(table, trainings, tmp_path):
    X, _ = table
    first = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    second = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    third = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    assert len(trainings) == 1
    expected = third.transform(X)
    with torch.no_grad():
        for parameter in second.network_.parameters():
            parameter.zero_()
    np.testing.assert_array_equal(third.transform(X), expected)
    np.testing.assert_array_equal(first.transform(X), expected)


def test_memory_accepts_a_directory_or_a_joblib_memory(table, trainings, tmp_path):
    X, _ = table
    DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    DiffusionFeaturizer(memory=os.fspath(tmp_path), timesteps=(5,), **TABLE).fit(X)
    DiffusionFeaturizer(memory=joblib.Memory(os.fspath(tmp_path), verbose=0), pooling="max", **TABLE).fit(X)
    assert len(trainings) == 1


def test_invalid_memory_is_rejected_before_training(table, trainings):
    X, _ = table
    with pytest.raises(ValueError, match="memory"):
        DiffusionFeaturizer(memory=42, **TABLE).fit(X)
    assert trainings == []


@pytest.fixture
def loads(monkeypatch):
    """A list of the sources read from disk."""
    calls = []
    original = registry.load_denoiser

    def counting(source):
        calls.append(source)
        return original(source)

    monkeypatch.setattr(registry, "load_denoiser", counting)
    return calls


def test_pretrained_denoiser_is_loaded_once_per_process(table, loads, tmp_path):
    X, _ = table
    directory = tmp_path / "pretrained"
    DiffusionFeaturizer(**TABLE).fit(X).save_pretrained(directory)
    first, second = (DiffusionFeaturizer(denoiser=directory, timesteps=t, **PRETRAINED).fit(X) for t in (5, 9))
    assert len(loads) == 1
    assert first.network_ is not second.network_
    expected = first.transform(X)

    tuned = DiffusionFeaturizer(denoiser=str(directory), train_denoiser=True, **{**TINY, "max_steps": 2}).fit(X)
    assert tuned.n_steps_ == 2
    assert len(loads) == 1
    again = DiffusionFeaturizer(denoiser=directory, timesteps=5, **PRETRAINED).fit(X)
    np.testing.assert_array_equal(again.transform(X), expected)  # fine-tuning trained a copy


def test_pretrained_denoiser_saved_again_is_reloaded(table, loads, tmp_path):
    X, _ = table
    directory = tmp_path / "pretrained"
    DiffusionFeaturizer(**TABLE).fit(X).save_pretrained(directory)
    before = DiffusionFeaturizer(denoiser=directory, **PRETRAINED).fit(X).transform(X)
    replacement = DiffusionFeaturizer(**{**TABLE, "random_state": 1}).fit(X)
    replacement.save_pretrained(directory)
    for path in directory.rglob("*"):  # file times may not tick between two quick saves
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = DiffusionFeaturizer(denoiser=directory, **PRETRAINED).fit(X)
    assert len(loads) == 2
    assert not np.array_equal(after.transform(X), before)
    assert_same_fit(after, DiffusionFeaturizer(denoiser=replacement.network_, **PRETRAINED).fit(X), X)


def test_process_backend_shares_the_cache(digits_small, tmp_path):
    X, y = digits_small
    reference = grid_search(X, y, memory=tmp_path / "sequential", timesteps=TIMESTEPS[:4])
    parallel = grid_search(X, y, memory=tmp_path / "parallel", timesteps=TIMESTEPS[:4], n_jobs=2)
    assert_same_scores(parallel, reference)
    assert len(cached_entries(tmp_path / "parallel")) == 3


def _only_entry(location):
    (path,) = location.rglob("*.safetensors")
    return path


def _flip_a_weight_byte(path):
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x40
    path.write_bytes(bytes(data))


def _non_finite_weights(path):
    from safetensors.torch import load, save

    payload = caching.unsealed(caching._ENTRY_MAGIC, path.read_bytes())
    tensors = load(payload)
    next(iter(tensors.values())).fill_(float("nan"))
    metadata = {"diffrep": json.dumps(caching._entry_header(payload))}
    path.write_bytes(caching.sealed(caching._ENTRY_MAGIC, save(tensors, metadata=metadata)))


def _another_trainings_entry(path):
    other = path.parent.parent / "other"
    DiffusionFeaturizer(memory=other, **{**TABLE, "learning_rate": 5e-3}).fit(np.ones((20, 6)) * np.arange(6))
    path.write_bytes(_only_entry(other).read_bytes())


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_flip_a_weight_byte, "its checksum does not match its content"),
        (lambda path: path.write_bytes(path.read_bytes()[:300]), "its checksum does not match its content"),
        (_non_finite_weights, "it holds NaN or infinite weights"),
        (_another_trainings_entry, "it was written for another training"),
    ],
    ids=["flipped-byte", "truncated", "nan-weights", "foreign"],
)
def test_a_damaged_cache_entry_warns_once_and_is_retrained(table, trainings, tmp_path, damage, reason):
    X, _ = table
    first = DiffusionFeaturizer(memory=tmp_path / "cache", **TABLE).fit(X)
    path = _only_entry(tmp_path / "cache")
    damage(path)
    trainings.clear()
    expected = rf"Ignoring the memory cache entry {path} \({reason}.*\); training again"
    with pytest.warns(CacheWarning, match=expected) as w:
        again = DiffusionFeaturizer(memory=tmp_path / "cache", **TABLE).fit(X)
    assert len(w) == 1 and "\n" not in str(w[0].message)
    assert w[0].filename == __file__  # shown at the fit call above, not inside diffrep or scikit-learn
    assert len(trainings) == 1
    assert_same_fit(again, first, X)  # never the damaged weights
    DiffusionFeaturizer(memory=tmp_path / "cache", **TABLE).fit(X)
    assert len(trainings) == 1  # the entry was replaced by a good one


def test_a_planted_pickle_anywhere_in_the_cache_runs_no_code(table, trainings, tmp_path):
    X, _ = table
    first = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    marker = tmp_path.parent / f"{tmp_path.name}-code-ran"
    planted = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert planted
    for path in planted:  # every file of the cache, whatever its name, becomes a payload
        joblib.dump(_WritesMarker(marker), path)
    (tmp_path / "joblib").mkdir(exist_ok=True)
    joblib.dump(_WritesMarker(marker), tmp_path / "joblib" / "output.pkl")
    with pytest.warns(CacheWarning, match="Ignoring the memory cache entry"):
        again = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    assert not marker.exists()
    assert len(trainings) == 2
    assert_same_fit(again, first, X)


def test_a_cache_that_cannot_be_written_warns_and_the_fit_goes_on(table, monkeypatch, tmp_path):
    X, _ = table

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(caching, "atomic_write", full_disk)
    with pytest.warns(CacheWarning, match=rf"Cannot write to the memory cache at .*\({os.strerror(errno.ENOSPC)}\)"):
        cached = DiffusionFeaturizer(memory=tmp_path, **TABLE).fit(X)
    assert_same_fit(cached, DiffusionFeaturizer(**TABLE).fit(X), X)
