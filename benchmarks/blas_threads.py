"""The default probe's fit with one and with two BLAS threads, side by side in one run.

The probes' solvers (L-BFGS on a logistic loss) spend their time in numpy's
BLAS, whose thread pool torch's ``set_num_threads`` does not reach. This
script times ``default_probe().fit`` on data of the demo's shape (1,347
samples x 1,024 features, 10 classes) under ``threadpoolctl`` limits of 1
and 2 threads, interleaved, and prints the ratio. It is why the command line
gives the BLAS pools one thread (``diffrep/app/threads.py``).

Run::

    python benchmarks/blas_threads.py [--repeats 3]
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from diffrep.probes import default_probe


def timed_fit(X, y, n_threads):
    """Seconds of one ``default_probe().fit`` with ``n_threads`` BLAS threads."""
    with threadpool_limits(limits=n_threads, user_api="blas"):
        start = time.perf_counter()
        default_probe().fit(X, y)
        return time.perf_counter() - start


def main(repeats):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 1347)
    X = rng.normal(size=(1347, 1024)).astype(np.float32)
    X += np.eye(10, dtype=np.float32)[y] @ rng.normal(size=(10, 1024)).astype(np.float32) * 0.3
    times = {1: [], 2: []}
    for _ in range(repeats):
        for n_threads in times:  # interleaved, so a change of load hits both alike
            times[n_threads].append(timed_fit(X, y, n_threads))
    one, two = (float(np.median(times[n])) for n in (1, 2))
    print(f"default probe fit, 1,347 x 1,024, median of {repeats}: 1 BLAS thread {one:.2f} s, 2 threads {two:.2f} s, "
          f"ratio 2/1 = {two / one:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    main(parser.parse_args().repeats)
