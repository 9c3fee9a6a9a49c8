"""The one check for NaN and infinity in tensors: trained, cached, checkpointed and loaded weights."""

from __future__ import annotations

import torch


def non_finite_tensors(named_tensors):
    """The names of the floating-point tensors that hold NaN or infinity.

    Integer tensors (step counters, index buffers) cannot hold either and are
    passed over.

    Parameters
    ----------
    named_tensors : iterable of (name, torch.Tensor)
        Such as ``network.state_dict().items()``.

    Returns
    -------
    names : list
        In the order given; empty when every tensor is finite.
    """
    return [name for name, tensor in named_tensors if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
