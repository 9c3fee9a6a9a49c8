"""Collecting named activations of a network during one forward pass.

No hook is ever registered on the captured modules. One process-wide forward
hook, registered while at least one capture is active in any thread and
removed with the last, looks each module that runs up in the captures active
in the calling thread (a thread-local registry): a call of
:func:`run_with_capture` enters its capture there for the duration of one
forward pass and leaves it in ``finally``. (A global hook sends every module
call of the process through torch's slower hooked path: +15-25% on
batch-of-one forwards of the built-in networks, measured; hence it is not left
registered between calls.) So a network pickles or deep-copies
cleanly even while another thread is capturing from it, nothing lingers on it
between calls, and concurrent calls on a shared network never see each other's
activations. Once every requested module has fired, the forward pass is cut
short: later layers never run.
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


_threads = threading.local()  # .captures: the captures active in each thread, innermost last
_hook_lock = threading.Lock()
_hook = {"handle": None, "users": 0}  # the global hook's handle while captures are active, and their count


class _Capture:
    """The requested modules of one forward pass and the store their outputs go to.

    Parameters
    ----------
    modules : dict of str -> torch.nn.Module
        Kept referenced, so that no other module can take one's ``id`` meanwhile.
    store : dict
        Receives ``name -> output tensor``.
    stop_when_done : bool
        Raise :class:`_AllCaptured` once every module has fired.
    """

    def __init__(self, modules, store, stop_when_done):
        self.modules = modules
        self.names = {}
        for name, module in modules.items():
            self.names.setdefault(id(module), []).append(name)
        self.store = store
        self.stop_when_done = stop_when_done

    def record(self, module, output):
        """Keep ``output`` when ``module`` is one of the requested modules."""
        names = self.names.get(id(module))
        if names is None:
            return
        for name in names:
            self.store[name] = first_tensor(output)
        if self.stop_when_done and len(self.store) == len(self.modules):
            raise _AllCaptured


def _record(module, inputs, output):
    """The process-wide forward hook: hand ``output`` to the calling thread's active captures."""
    for capture in getattr(_threads, "captures", ()):
        capture.record(module, output)


def _enter_hook():
    """Count one more active capture; register :func:`_record` globally for the first."""
    with _hook_lock:
        if _hook["users"] == 0:
            _hook["handle"] = torch.nn.modules.module.register_module_forward_hook(_record)
        _hook["users"] += 1


def _leave_hook():
    """Count one capture less; remove the global hook with the last."""
    with _hook_lock:
        _hook["users"] -= 1
        if _hook["users"] == 0:
            _hook["handle"].remove()
            _hook["handle"] = None


@contextlib.contextmanager
def _capturing(modules, store, stop_when_done):
    """Make this thread's forward passes record ``modules``' outputs into ``store`` until the block ends."""
    if not hasattr(_threads, "captures"):
        _threads.captures = []
    capture = _Capture(modules, store, stop_when_done)
    _threads.captures.append(capture)
    _enter_hook()
    try:
        yield
    finally:
        _leave_hook()
        _threads.captures.remove(capture)


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
    with _capturing(wanted, store, stop_early):
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
