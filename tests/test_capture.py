"""Capturing activations: a capture lives for one call, each thread sees its own, the forward stops early."""

import sys
import threading
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from torch.nn.modules.module import _global_forward_hooks

from diffrep._engine.capture import first_tensor, run_with_capture


class _Step(nn.Module):
    """``x * factor``, noting every call in a shared log."""

    def __init__(self, name, factor, log):
        super().__init__()
        self.name, self.factor, self.log = name, factor, log

    def forward(self, x):
        self.log.append(self.name)
        return x * self.factor


class _Pair(nn.Module):
    """Returns a tuple, like diffusers' down blocks: (hidden, extras)."""

    def forward(self, x):
        return x + 1, {"extra": x}


class _Chain(nn.Module):
    """A toy denoiser ``(x, t) -> x``: a -> pair -> b -> c, with optional rendezvous points."""

    def __init__(self):
        super().__init__()
        self.log = []
        self.a = _Step("a", 2.0, self.log)
        self.pair = _Pair()
        self.b = _Step("b", 3.0, self.log)
        self.c = _Step("c", 5.0, self.log)
        self.rendezvous = None  # a threading.Barrier while threads must meet inside the forward pass
        self.fail_after_b = False

    def _meet(self):
        if self.rendezvous is not None:
            self.rendezvous.wait(timeout=20)

    def forward(self, x, t):
        h = self.a(x)
        self._meet()
        h = self.pair(h)[0]
        h = self.b(h)
        self._meet()
        if self.fail_after_b:
            raise RuntimeError("boom")
        return self.c(h + t[:, None])


def _no_hooks_left(network):
    """No hook on the network's modules, and none left process-wide (it would slow every module call)."""
    return not any(module._forward_hooks for module in network.modules()) and not _global_forward_hooks


def _inputs(value):
    return torch.full((2, 3), float(value)), torch.tensor([1, 1])


def test_captures_named_modules_and_the_output():
    network = _Chain()
    captured = run_with_capture(network, *_inputs(1), ["a", "b"], need_output=True)
    torch.testing.assert_close(captured["a"], torch.full((2, 3), 2.0))
    torch.testing.assert_close(captured["b"], torch.full((2, 3), 9.0))
    torch.testing.assert_close(captured["__output__"], torch.full((2, 3), 50.0))
    assert _no_hooks_left(network)


def test_forward_stops_once_every_module_fired():
    network = _Chain()
    captured = run_with_capture(network, *_inputs(1), ["b", "a"], need_output=False)
    assert set(captured) == {"a", "b"}
    assert network.log == ["a", "b"], "c ran although nothing after b was requested"
    assert _no_hooks_left(network)


def test_forward_runs_to_the_end_when_the_output_is_needed():
    network = _Chain()
    run_with_capture(network, *_inputs(1), ["a"], need_output=True)
    assert network.log == ["a", "b", "c"]


def test_hooks_are_removed_when_the_forward_pass_raises():
    network = _Chain()
    network.fail_after_b = True
    with pytest.raises(RuntimeError, match="boom"):
        run_with_capture(network, *_inputs(1), ["a", "c"], need_output=True)
    assert _no_hooks_left(network)


def test_module_that_never_runs_is_reported():
    network = _Chain()
    network.unused = nn.Identity()
    with pytest.raises(RuntimeError, match=r"\['unused'\] did not run"):
        run_with_capture(network, *_inputs(1), ["a", "unused"], need_output=True)
    assert _no_hooks_left(network)


def test_tuple_outputs_are_captured_as_their_first_tensor():
    captured = run_with_capture(_Chain(), *_inputs(1), ["pair"], need_output=False)
    torch.testing.assert_close(captured["pair"], torch.full((2, 3), 3.0))


def test_concurrent_calls_on_one_network_each_get_their_own_activations():
    network = _Chain()
    lone = {value: run_with_capture(network, *_inputs(value), ["a", "b"], True) for value in (1, 7)}
    network.log.clear()
    network.rendezvous = threading.Barrier(2)
    results, errors = {}, []

    def call(value):
        try:
            results[value] = run_with_capture(network, *_inputs(value), ["a", "b"], True)
        except Exception as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(value,)) for value in (1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert network.log.count("b") == 2, "both threads must have run b while both hooks were registered"
    for value in (1, 7):
        for name in ("a", "b", "__output__"):
            torch.testing.assert_close(results[value][name], lone[value][name])
    assert _no_hooks_left(network)


class _Guarded(_Chain):
    """A denoiser that catches ``Exception`` around its first layer, as defensive code does."""

    def forward(self, x, t):
        try:
            h = self.a(x)
        except Exception:
            h = x
        return self.c(self.b(h))


def test_early_stop_is_not_swallowed_by_except_exception_in_the_network():
    network = _Guarded()
    captured = run_with_capture(network, *_inputs(1), ["a"], need_output=False)
    torch.testing.assert_close(captured["a"], torch.full((2, 3), 2.0))
    assert network.log == ["a"]


@pytest.mark.slow
def test_many_concurrent_early_stopped_calls_do_not_disturb_each_other():
    network = _Chain()
    errors = []

    def call(value):
        x, t = _inputs(value)
        try:
            for _ in range(50_000):
                captured = run_with_capture(network, x, t, ["a"], need_output=False)
                assert float(captured["a"][0, 0]) == 2.0 * value
        except Exception as exc:  # torch may raise "OrderedDict mutated during iteration"
            errors.append(exc)

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=call, args=(value,)) for value in (1, 7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert not errors, errors


# ------------------------------------------------------------------------ first_tensor
def test_first_tensor_unwraps_module_outputs():
    tensor = torch.ones(2)
    assert first_tensor(tensor) is tensor
    assert first_tensor((tensor, "extra")) is tensor
    assert first_tensor([(tensor, None), None]) is tensor
    assert first_tensor(SimpleNamespace(sample=tensor)) is tensor


@pytest.mark.parametrize("output", [(), None, {"sample": 1}, "text"])
def test_first_tensor_refuses_outputs_without_a_tensor(output):
    with pytest.raises(TypeError, match="cannot find a tensor"):
        first_tensor(output)
