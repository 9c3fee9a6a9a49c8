"""Peak memory of DiffusionFeaturizer.transform on 20,000 vs 2,000 images.

Each measurement runs in a fresh subprocess (sizes alternate, the medians are
reported). A worker fits an untrained featurizer on 2,000 images, warms it up,
then measures the peak resident memory during ``transform`` above what the
process held just before (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``)
and, on CUDA, the peak of ``torch.cuda.max_memory_allocated`` likewise.

Streaming in batches means the growth of that peak from 2,000 to 20,000 images
is about the growth of the output array: the ratio printed should be near 1.

Run ``python benchmarks/memory.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys

import torch
from _common import images, parser, setup

from diffrep import DiffusionFeaturizer

SMALL, LARGE = 2_000, 20_000
MIB = 2**20


def _status_kib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not found in /proc/self/status (this benchmark needs Linux).")


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def worker(args, n_samples):
    """Measure one transform of ``n_samples`` images; print the result as JSON."""
    device = setup(args)
    X, image_shape = images(args.image, max(n_samples, SMALL))
    X = X[:n_samples]
    featurizer = DiffusionFeaturizer(
        layers=args.layers,
        image_shape=image_shape,
        train_denoiser=False,
        model_width=args.model_width,
        batch_size=args.batch_size,
        device=str(device),
        random_state=0,
    ).fit(X[:SMALL])
    featurizer.transform(X[: 2 * args.batch_size])  # warm-up: allocator pools, lazy imports
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        gpu_before = torch.cuda.memory_allocated(device)
    _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    features = featurizer.transform(X)
    result = {
        "n_samples": n_samples,
        "rss_peak_mib": (_status_kib("VmHWM") - rss_before) / 1024,
        "output_mib": features.nbytes / MIB,
        "input_mib": X.nbytes / MIB,
    }
    if device.type == "cuda":
        result["gpu_peak_mib"] = (torch.cuda.max_memory_allocated(device) - gpu_before) / MIB
    print(json.dumps(result))


def measure(n_samples, argv):
    """Run one worker subprocess; return its JSON result."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", str(n_samples), *argv],
        check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    cli = parser(__doc__.splitlines()[0], repeats=2)
    cli.add_argument("--layers", nargs="+", default=["mid_block"])
    cli.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = cli.parse_args()
    if args.worker is not None:
        worker(args, args.worker)
        return
    setup(args)
    argv = sys.argv[1:]
    results = {SMALL: [], LARGE: []}
    for repeat in range(args.repeats):
        for n_samples in (SMALL, LARGE) if repeat % 2 == 0 else (LARGE, SMALL):
            results[n_samples].append(measure(n_samples, argv))

    def median(n_samples, key):
        return statistics.median(result[key] for result in results[n_samples])

    print(f"[5] peak memory of transform, {LARGE} vs {SMALL} images (layers={args.layers}; medians)")
    growth = {}
    for key, label in (("rss_peak_mib", "host RSS peak"), ("gpu_peak_mib", "GPU allocated peak"),
                       ("output_mib", "output array"), ("input_mib", "input array")):
        if key not in results[SMALL][0]:
            continue
        small, large = median(SMALL, key), median(LARGE, key)
        growth[key] = large - small
        print(f"    {label:<20} {SMALL}: {small:8.2f} MiB   {LARGE}: {large:8.2f} MiB   "
              f"growth {large - small:8.2f} MiB")
    ratio = growth["rss_peak_mib"] / growth["output_mib"]
    print(f"    host peak growth / output growth: {ratio:.2f}  (target: about 1)")
    if "gpu_peak_mib" in growth:
        print(f"    GPU peak growth: {growth['gpu_peak_mib']:.2f} MiB  (target: about 0, batches stream)")


if __name__ == "__main__":
    main()
