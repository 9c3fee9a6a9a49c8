"""How many threads the command line uses: for torch, the cores nobody else is busy on; for BLAS, one.

Measured on a 2-core machine with another job running: torch's default of
one thread per core made the quick demo 13x slower than one thread (285 s
against 22 s), because the threads wait for each other on a shared core. The
rule below gives torch the cores that are idle now, and at least one.

The probes' solvers run in numpy's BLAS, whose thread pool torch's setting
does not reach. Their products are small (samples x about a thousand
features x classes), and on the same machine, idle, two BLAS threads made
the default probe's fit on 1,347 x 1,024 features 4x slower than one
(3.55 s against 0.86 s): the BLAS pools get one thread.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager

AUTO = "auto"


def usable_cores():
    """Number of CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def busy_cores():
    """Cores kept busy by other processes: the 1-minute load average, rounded up past a small margin.

    A load of 0.2 (a shell, an editor) counts as no busy core; 0.3 and 1.0 as one.
    """
    if not hasattr(os, "getloadavg"):
        return 0
    return max(0, math.ceil(os.getloadavg()[0] - 0.25))


def choose_threads(requested=AUTO):
    """The number of torch threads to use.

    Parameters
    ----------
    requested : "auto" or int, default="auto"
        A positive count is used as given; ``"auto"`` takes the usable cores
        minus those other processes keep busy (1-minute load average), and at
        least one.

    Returns
    -------
    n_threads : int
    """
    if requested == AUTO:
        return max(1, usable_cores() - busy_cores())
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"threads must be 'auto' or a positive int, got {requested!r}.")
    return requested


@contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch threads and one thread in the BLAS pools, then restore them.

    Parameters
    ----------
    n_threads : int
        The torch thread count inside the block.

    Yields
    ------
    None
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)
