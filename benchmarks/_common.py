"""Shared helpers of the benchmark scripts: data, device, side-by-side timing, reports.

Timings are taken in alternating order (A, B, B, A, A, B, ...) so that a load
change on a shared machine hits both candidates alike; each repetition gives
one ratio of adjacent measurements and the report shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

_clock = time.perf_counter


def parser(description, repeats):
    """An argument parser with the options every benchmark shares.

    Parameters
    ----------
    description : str
    repeats : int
        Default number of alternating repetitions.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ... (default: auto)")
    parser.add_argument("--repeats", type=int, default=repeats, help="alternating repetitions per candidate")
    parser.add_argument("--image", choices=("digits", "random32"), default="digits",
                        help="digits-like 8x8 images or 32x32 RGB random images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model-width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall-clock time, or this process's CPU time (steadier on a shared "
                             "machine with --threads 1; CPU runs only)")
    return parser


def setup(args):
    """Apply ``--threads`` and resolve ``--device``; print what runs where.

    Returns
    -------
    device : torch.device
    """
    from diffrep._engine.device import resolve_device

    global _clock
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        raise SystemExit("--clock cpu measures CPU runs only; use the wall clock with a GPU.")
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# device={device} ({name}), torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"image={args.image}, model_width={args.model_width}, batch_size={args.batch_size}, "
          f"repeats={args.repeats}, clock={args.clock}")
    return device


def images(kind, n_samples, seed=0):
    """Images as a flat float32 matrix and their ``(C, H, W)`` shape.

    ``"digits"`` tiles sklearn's 8x8 digits with a little jitter, so any number
    of distinct digits-like images is available; ``"random32"`` draws uniform
    32x32 RGB images.

    Returns
    -------
    X : ndarray of float32, shape (n_samples, C * H * W)
    image_shape : tuple of int
    """
    rng = np.random.default_rng(seed)
    if kind == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits().data.astype(np.float32)
        X = digits[rng.integers(len(digits), size=n_samples)]
        return X + rng.uniform(0, 0.5, size=X.shape).astype(np.float32), (1, 8, 8)
    return rng.uniform(0, 1, size=(n_samples, 3 * 32 * 32)).astype(np.float32), (3, 32, 32)


def synchronize(device):
    """Wait for queued GPU work so that wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_alternating(candidates, repeats, device):
    """Run every candidate ``repeats`` times, alternating their order.

    Parameters
    ----------
    candidates : dict of str -> callable
        Each is called without arguments; one warm-up call each comes first.
    repeats : int
    device : torch.device

    Returns
    -------
    times : dict of str -> list of float
        Seconds of every repetition, in the order the repetitions ran.
    """
    names = list(candidates)
    for name in names:
        candidates[name]()
    times = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            synchronize(device)
            start = _clock()
            candidates[name]()
            synchronize(device)
            times[name].append(_clock() - start)
    return times


def compare(title, times, subject, reference, target=None):
    """Print one figure: medians of both candidates and the median per-repetition ratio.

    The ratio is ``reference time / subject time`` (a throughput ratio: above 1
    means ``subject`` is faster).

    Parameters
    ----------
    title : str
    times : dict of str -> list of float
    subject, reference : str
        Keys of ``times``.
    target : float or None
        Printed with a pass/fail mark when given.

    Returns
    -------
    ratio : float
    """
    ratios = [ref / sub for ref, sub in zip(times[reference], times[subject])]
    ratio = statistics.median(ratios)
    verdict = "" if target is None else f"  target >= {target:.2f}: {'PASS' if ratio >= target else 'FAIL'}"
    print(f"{title}")
    print(f"    {subject:<34} median {statistics.median(times[subject]) * 1e3:9.1f} ms")
    print(f"    {reference:<34} median {statistics.median(times[reference]) * 1e3:9.1f} ms")
    spread = f"[{min(ratios):.3f} .. {max(ratios):.3f}]"
    print(f"    ratio {reference} / {subject}: {ratio:.3f}  (per-repetition {spread}){verdict}")
    return ratio
