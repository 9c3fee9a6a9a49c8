"""The ``diffrep`` console command (also ``python -m diffrep``)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from .. import __version__
from .threads import AUTO, choose_threads, torch_threads

QUICK = dict(max_steps=100, model_width=16)
QUICK_TIMESTEPS = (0, 25, 100, 400, 999)  # five of the demo's nine: the probes are most of the quick run's time
QUICK_SAMPLES = 600  # half the digits (stratified): the probes' time grows with the samples
FULL = dict(max_steps=None, model_width=None)  # DiffusionFeaturizer's defaults: sized for the data


def _int_list(text):
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _threads(text):
    if text == AUTO:
        return AUTO
    try:
        return choose_threads(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None


def _str_list(text):
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser():
    parser = argparse.ArgumentParser(
        prog="diffrep",
        description="Diffusion-model denoisers as feature extractors: representation quality over noise level.",
    )
    parser.add_argument("--version", action="version", version=f"diffrep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub):
        sub.add_argument("--timesteps", type=_int_list, default=None,
                         help="comma-separated DDPM timesteps, larger = noisier (default: 0,10,25,50,100,200,400,700,999)")
        sub.add_argument("--layers", type=_str_list, default=None,
                         help="comma-separated layers to capture (default: the backbone's default: up_blocks.0 for the built-in UNet)")
        sub.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
        sub.add_argument("--max-steps", type=int, default=None, help="denoiser training steps")
        sub.add_argument("--rates", type=lambda s: tuple(float(v) for v in s.split(",")), default=(0.0, 0.4),
                         help="label-noise rates to compare (default: 0,0.4)")
        sub.add_argument("--out", type=Path, default=Path("diffrep-out"), help="output folder for figures")
        sub.add_argument("--seed", type=int, default=0, help="random_state of everything (default 0)")
        sub.add_argument("--memory", type=Path, default=None,
                         help="cache folder of trained denoisers: a second run with the same data and "
                         "settings skips training")
        sub.add_argument("--threads", type=_threads, default=AUTO,
                         help="torch CPU threads: a count, or auto (default): the cores not busy with other "
                         "processes (1-minute load average), at least one")
        sub.add_argument("--quiet", action="store_true",
                         help="no progress bars, no convergence warnings of the probes")

    demo = commands.add_parser("demo", help="the whole idea on the embedded digits (no download)",
                               description="Train a small UNet denoiser on sklearn's 8x8 digits, sweep the "
                               "noise level, compare single timesteps, the noise-level ensemble and tuned "
                               "raw-pixel baselines.")
    demo.add_argument("--quick", action="store_true", help=f"a smoke test of the whole flow ({QUICK_SAMPLES} digits, {QUICK['max_steps']} training steps, "
                      f"width 16, timesteps {','.join(map(str, QUICK_TIMESTEPS))}): its "
                      "numbers are not the full run's")
    common(demo)

    curve = commands.add_parser("curve", help="the representation curve of your own labelled data",
                                description="DATA: an .npz with X and y, an .npy whose last column is the "
                                "label, a CSV with a label column, or a folder of images in class subfolders.")
    curve.add_argument("data", type=Path, help="labelled data file or image folder")
    curve.add_argument("--label-column", default="label", help="label column of a CSV (default: label)")
    curve.add_argument("--image-shape", type=_int_list, default=None,
                       help="C,H,W when 2-D data are flattened images")
    common(curve)
    return parser


def _featurizer_settings(args, defaults):
    from ..featurizer import DiffusionFeaturizer

    settings = dict(defaults)
    if args.max_steps is not None:
        settings["max_steps"] = args.max_steps
    if getattr(args, "image_shape", None):
        settings["image_shape"] = args.image_shape
    return DiffusionFeaturizer(layers=args.layers, device=args.device, random_state=args.seed,
                               memory=args.memory, **settings)


SMOKE_TEST_NOTE = (
    "--quick trains {steps} steps: a smoke test of the whole flow, not a measurement. The full run "
    "(`diffrep demo`) and its numbers are in the README and docs/getting_started.rst."
)


def _report(args, X, y, defaults, name, n_threads):
    from . import demo

    timesteps = args.timesteps or (QUICK_TIMESTEPS if getattr(args, "quick", False) else demo.DEMO_TIMESTEPS)
    featurizer = _featurizer_settings(args, defaults)
    start = time.perf_counter()
    n_test = demo.held_out_count(len(y))
    print(f"{len(y)} samples: {len(y) - n_test} to train the denoiser and the probes, {n_test} to test; "
          f"{n_threads} torch thread{'s' if n_threads > 1 else ''}")
    results, fitted, seconds = demo.run(
        X, y, timesteps=timesteps, rates=args.rates, featurizer=featurizer,
        random_state=args.seed, verbose=0 if args.quiet else 1,
    )
    source = (f"{fitted.n_steps_} training steps reused from the cache {args.memory}" if fitted.reused_training_
              else f"{fitted.n_steps_} training steps")
    print(f"denoiser: {type(fitted.network_).__name__} on {fitted.device_}, "
          f"{source} in {seconds['training']:.1f} s; layers {list(fitted.layers_)}")
    print(demo.format_table(results, fitted.sigmas_))
    args.out.mkdir(parents=True, exist_ok=True)
    figure = args.out / f"{name}_curve.png"
    demo.plot_sweep(results, fitted.sigmas_, figure)
    print(f"figure saved to {figure}")
    print(f"total time {time.perf_counter() - start:.1f} s")
    if getattr(args, "quick", False):
        print(SMOKE_TEST_NOTE.format(steps=fitted.n_steps_))


def _run(args, n_threads):
    if args.command == "demo":
        from ..datasets import load_digit_images

        X, y = load_digit_images()
        if args.quick:
            from sklearn.model_selection import train_test_split

            X, _, y, _ = train_test_split(X, y, train_size=QUICK_SAMPLES, stratify=y, random_state=args.seed)
        _report(args, X, y, QUICK if args.quick else FULL, "demo", n_threads)
    else:
        from ..datasets import load_labelled_data

        X, y = load_labelled_data(args.data, args.label_column)
        if y is None:
            raise ValueError(f"{args.data}: no labels found; add a labels.csv (file name, label) or put the "
                             "images in one subfolder per class.")
        _report(args, X, y, dict(max_steps=FULL["max_steps"]), args.data.stem or "curve", n_threads)


def main(argv=None):
    """Run the ``diffrep`` command line.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 1 on a user error (message on stderr), 2 on bad options.
    """
    args = _parser().parse_args(argv)
    n_threads = choose_threads(args.threads)
    try:
        with torch_threads(n_threads), warnings.catch_warnings():
            if args.quiet:
                from sklearn.exceptions import ConvergenceWarning

                warnings.simplefilter("ignore", ConvergenceWarning)
            _run(args, n_threads)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"diffrep {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0
