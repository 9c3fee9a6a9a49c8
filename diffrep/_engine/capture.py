"""Collecting named activations of a network during one forward pass.

Hooks exist only for the duration of one call (:func:`run_with_capture`)
and are removed in ``finally``, so fitted estimators pickle and nothing lingers
on the module. Every hook only records activations produced by the thread
that registered it, so concurrent calls on a shared network do not see each
other's activations. Once every requested module has fired, the forward pass
is cut short: later layers never run.
"""

from __future__ import annotations

import contextlib
import threading

import torch


class _AllCaptured(BaseException):
    """Raised inside a hook to stop a forward pass whose outputs are all collected.

    A ``BaseException``, so that no ``except Exception`` on the way out swallows
    it, and torch's error path, which loops over each module's hooks while other
    threads may be adding or removing theirs, never runs for it.
    """


def first_tensor(output):
    """The tensor a module or model returned.

    Handles plain tensors, diffusers output objects (``.sample``) and tuples
    (whose first item is taken, as for diffusers down blocks).

    Parameters
    ----------
    output : torch.Tensor, tuple or object with ``.sample``

    Returns
    -------
    tensor : torch.Tensor
    """
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "sample"):
        return output.sample
    if isinstance(output, (tuple, list)) and output:
        return first_tensor(output[0])
    raise TypeError(f"cannot find a tensor in a module output of type {type(output).__name__}.")


@contextlib.contextmanager
def _hooks(modules, store, stop_when_done):
    owner = threading.get_ident()
    handles = []

    def make_hook(name):
        def hook(module, inputs, output):
            if threading.get_ident() != owner:
                return
            store[name] = first_tensor(output)
            if stop_when_done and len(store) == len(modules):
                raise _AllCaptured

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_with_capture(network, x_t, timesteps, layer_names, need_output):
    """Run ``network(x_t, timesteps)`` and return the requested activations.

    Parameters
    ----------
    network : torch.nn.Module
        A denoiser following the protocol of :mod:`diffrep.denoisers`.
    x_t : torch.Tensor of shape (batch, ...)
    timesteps : torch.LongTensor of shape (batch,)
    layer_names : sequence of str
        Names of submodules of ``network`` to capture.
    need_output : bool
        Whether the network's final output is needed; if not, the forward pass
        stops as soon as every requested layer has fired.

    Returns
    -------
    activations : dict of str -> torch.Tensor
        The captured outputs, plus ``"__output__"`` (the network's output)
        when ``need_output`` is true.
    """
    modules = dict(network.named_modules())
    wanted = {name: modules[name] for name in layer_names}
    store = {}
    stop_early = not need_output
    with _hooks(wanted, store, stop_early):
        try:
            output = network(x_t, timesteps)
        except _AllCaptured:
            output = None
    missing = [name for name in wanted if name not in store]
    if missing:
        raise RuntimeError(
            f"layers {missing} did not run during the forward pass; they cannot be captured."
        )
    if need_output:
        store["__output__"] = first_tensor(output)
    return store
