"""One fitted featurizer called from several threads at once, as a server or a notebook does.

While thread A waits inside a forward pass, thread B's forward pass runs
through the same modules. :mod:`diffrep._engine.capture` keeps each thread's
captures in a thread-local registry consulted by one process-wide hook, so
each call records only what its own thread computes.
``test_hooks_ignore_forward_passes_of_other_threads`` forces that interleaving
deterministically, and ``test_without_per_thread_captures_the_interleaving_breaks_capture``
shows the same scenario failing once the registry is shared by every thread:
that is the protection these tests stand on. Since nothing is registered on the
modules, a featurizer pickles while another thread transforms with it.
"""

import pickle
import threading
import types

import numpy as np
import pytest
import torch
from torch import nn

from diffrep import DiffusionFeaturizer
from diffrep._engine import capture

from .helpers import TINY


@pytest.mark.parametrize("layers", [None, ("down_blocks.0", "x0")], ids=["early-stop", "full-forward"])
def test_threads_get_exactly_what_a_lone_call_gets(digits, layers):
    X, _ = digits
    featurizer = DiffusionFeaturizer(
        timesteps=(10, 300), layers=layers, image_shape=(1, 8, 8), **TINY
    ).fit(X[:120])
    inputs = [X[100 * i : 100 * i + 20 + 15 * i] for i in range(4)]  # different samples and sizes
    alone = [featurizer.transform(x) for x in inputs]

    start = threading.Barrier(len(inputs))
    results = {i: [] for i in range(len(inputs))}
    errors = []

    def serve(i):
        start.wait()
        try:
            for _ in range(5):
                results[i].append(featurizer.transform(inputs[i]))
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    for i, expected in enumerate(alone):
        assert len(results[i]) == 5
        for features in results[i]:
            np.testing.assert_array_equal(features, expected)


class _Paused(nn.Module):
    """Blocks the forward pass of the thread named ``"paused"`` until released."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def forward(self, x):
        if threading.current_thread().name == "paused":
            self.entered.set()
            assert self.release.wait(timeout=30)
        return x

    def __getstate__(self):  # a pickled copy gets fresh events
        return {key: value for key, value in vars(self).items() if key not in ("entered", "release")}

    def __setstate__(self, state):
        super().__setstate__(state)
        self.entered, self.release = threading.Event(), threading.Event()


class _Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.pause = _Paused()
        self.second = nn.Linear(3, 3)

    def forward(self, x, t):
        return self.second(self.pause(self.first(x)))


def _interleave(network):
    """Thread "paused" captures ``second`` while the main thread runs a whole capture meanwhile."""
    x_paused, x_main = torch.randn(2, 3, generator=torch.Generator().manual_seed(0)), torch.ones(5, 3)
    t = torch.zeros(5, dtype=torch.long)
    result = {}

    def paused():
        result["paused"] = capture.run_with_capture(network, x_paused, t[:2], ["second"], need_output=False)

    thread = threading.Thread(target=paused, name="paused")
    thread.start()
    assert network.pause.entered.wait(timeout=30)  # its hook on `second` is registered now
    try:
        main = capture.run_with_capture(network, x_main, t, ["second"], need_output=False)
    finally:
        network.pause.release.set()
        thread.join()
    with torch.no_grad():
        expected_main = network.second(network.first(x_main))
        expected_paused = network.second(network.first(x_paused))
    return main["second"], expected_main, result["paused"]["second"], expected_paused


def test_hooks_ignore_forward_passes_of_other_threads():
    torch.manual_seed(0)
    main, expected_main, paused, expected_paused = _interleave(_Network())
    torch.testing.assert_close(main, expected_main, rtol=0, atol=0)
    torch.testing.assert_close(paused, expected_paused, rtol=0, atol=0)


def test_without_per_thread_captures_the_interleaving_breaks_capture(monkeypatch):
    """Negative control: the previous test fails when every thread shares one registry of captures."""
    monkeypatch.setattr(capture, "_threads", types.SimpleNamespace())
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="did not run during the forward pass"):
        _interleave(_Network())


def test_a_network_pickles_while_another_thread_is_inside_a_captured_forward_pass():
    """Nothing is registered on the modules, so nothing unpicklable is on them mid-capture."""
    network = _Network()
    x, t = torch.ones(2, 3), torch.zeros(2, dtype=torch.long)
    thread = threading.Thread(
        target=capture.run_with_capture, args=(network, x, t, ["second"]), kwargs={"need_output": True},
        name="paused",
    )
    thread.start()
    assert network.pause.entered.wait(timeout=30)
    try:
        assert not any(module._forward_hooks for module in network.modules())
        copy = pickle.loads(pickle.dumps(network))
    finally:
        network.pause.release.set()
        thread.join()
    with torch.no_grad():
        torch.testing.assert_close(copy.second(copy.first(x)), network.second(network.first(x)), rtol=0, atol=0)


def test_a_featurizer_pickles_while_another_thread_transforms_with_it(digits):
    X, _ = digits
    featurizer = DiffusionFeaturizer(timesteps=(10, 300), image_shape=(1, 8, 8), **TINY).fit(X[:60])
    expected = featurizer.transform(X[:40])
    done, errors = threading.Event(), []

    def transform_until_done():
        try:
            while not done.is_set():
                featurizer.extract(X[:40], (10, 300, 600))  # a new timestep set: a real forward pass each time
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    thread = threading.Thread(target=transform_until_done)
    thread.start()
    try:
        copies = [pickle.loads(pickle.dumps(featurizer)) for _ in range(40)]
    finally:
        done.set()
        thread.join()
    assert not errors
    np.testing.assert_array_equal(copies[-1].transform(X[:40]), expected)


@pytest.mark.parametrize("denoiser", ["mlp", "unet"])
def test_a_fit_neither_reads_nor_changes_the_global_random_state(table, denoiser):
    X = np.tile(table[0][:40], (1, 6))[:, :16] if denoiser == "unet" else table[0]
    settings = dict(TINY, denoiser=denoiser, max_steps=2, image_shape=(1, 4, 4) if denoiser == "unet" else None)
    torch.manual_seed(123)
    first = DiffusionFeaturizer(**settings).fit(X)
    expected_draw = torch.randn(3)
    torch.manual_seed(456)  # another global state: same weights, and the draw after the fit is untouched
    second = DiffusionFeaturizer(**settings).fit(X)
    torch.manual_seed(123)
    assert torch.equal(torch.randn(3), expected_draw)
    for name, value in first.network_.state_dict().items():
        assert torch.equal(value, second.network_.state_dict()[name]), name


def test_fits_in_parallel_threads_equal_a_lone_fit(table):
    """Each thread's network is drawn from its own generator, whatever the other threads do meanwhile."""
    X, _ = table
    seeds = list(range(6))
    alone = {seed: DiffusionFeaturizer(**dict(TINY, denoiser="mlp", max_steps=1, random_state=seed)).fit(X)
             for seed in seeds}
    start = threading.Barrier(len(seeds))
    fitted, errors = {}, []

    def fit(seed):
        start.wait()
        try:
            for _ in range(3):
                fitted.setdefault(seed, []).append(
                    DiffusionFeaturizer(**dict(TINY, denoiser="mlp", max_steps=1, random_state=seed)).fit(X)
                )
                torch.manual_seed(seed)  # a thread seeding the global generator must not matter either
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for seed in seeds:
        reference = alone[seed].network_.state_dict()
        for featurizer in fitted[seed]:
            for name, value in featurizer.network_.state_dict().items():
                assert torch.equal(value, reference[name]), (seed, name)
