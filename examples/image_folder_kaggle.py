"""An image competition as it ships: a flat folder of PNGs and a CSV of (id, label), used by path.

Image competitions give a folder of image files and a ``train.csv`` naming
each file (often without its suffix) and its label. This script builds such a
folder from scikit-learn's 8x8 digits (no download; a third of the images
saved as RGB, as real sets mix colour modes), or takes yours with ``--csv``,
and then works on the *file paths* (a pandas column) from start to end:

1. ``load_labelled_data`` reads the same layout into pixels, for the raw
   baseline (and shows the labels it finds are the CSV's);
2. one ``DiffusionFeaturizer`` is trained without labels on every image and
   frozen (labels are never seen, so cross-validating probes on it is fair;
   a competition's unlabelled test images may be added to this training);
3. ``representation_curve``: cross-validated accuracy at each timestep;
4. ``NoiseEnsembleClassifier`` against the same tuned logistic probe on the
   raw pixels, on the same stratified folds;
5. ``label_noise_study`` of both on the same paths, at 0% and 40% label noise.

Run::

    python examples/image_folder_kaggle.py --quick     # a smoke test: 300 images, a tiny denoiser, 20 steps
    python examples/image_folder_kaggle.py             # every digit, the default training budget
    python examples/image_folder_kaggle.py --csv comp/train.csv --images comp/train \\
        --id-column id --label-column label            # your competition

Numbers are not quoted here: no full run of this script has been recorded in
the repository (see ``README.md`` and ``docs/examples.rst`` for measured ones).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier, label_noise_study, representation_curve
from diffrep.baselines import tuned_probe
from diffrep.datasets import load_labelled_data
from diffrep.images import read_image_files

TIMESTEPS = (0, 10, 25, 50, 100, 200)


def write_competition(root, n_images):
    """A competition-style folder: ``root/train/<id>.png`` and ``root/train.csv`` with columns id, label."""
    digits = load_digits()
    images = (digits.images[:n_images] * (255 / 16)).round().astype(np.uint8)
    (root / "train").mkdir(parents=True)
    rows = []
    for index, (pixels, label) in enumerate(zip(images, digits.target[:n_images])):
        image = Image.fromarray(pixels, mode="L")
        if index % 3 == 0:
            image = image.convert("RGB")  # grey content in an RGB file, as mixed sets have
        name = f"img_{index:05d}"
        image.save(root / "train" / f"{name}.png")
        rows.append({"id": name, "label": int(label)})
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    return root / "train.csv", root / "train"


def pixels_of(paths):
    """Raw grey pixels of image files, one row per file: the baseline's input."""
    images = read_image_files([str(path) for path in paths], channels=1)
    return images.reshape(len(images), -1)


def main(csv, images, id_column, label_column, max_steps, model_width, folds, rates, n_repeats):
    frame = pd.read_csv(csv)
    paths = frame[id_column].astype(str).map(lambda name: str(images / (name if Path(name).suffix else f"{name}.png")))
    y = frame[label_column].to_numpy()
    _, y_read = load_labelled_data(csv, label_column=label_column)
    assert np.array_equal(y_read, y), "load_labelled_data found other labels than the CSV holds"
    print(f"{len(paths)} images in {images}, {len(np.unique(y))} classes; X is the column of file paths")

    start = time.perf_counter()
    featurizer = DiffusionFeaturizer(timesteps=TIMESTEPS, max_steps=max_steps, model_width=model_width,
                                     random_state=0).fit(paths)
    print(f"denoiser trained without labels: {featurizer.n_steps_} steps in {time.perf_counter() - start:.0f} s, "
          f"images read as {featurizer.sample_shape_}")
    frozen = FrozenEstimator(featurizer)

    curve = representation_curve(frozen, paths, y, TIMESTEPS, cv=folds, random_state=0)
    print("\ncross-validated accuracy per timestep (larger t = noisier):")
    print(curve[["timestep", "sigma", "mean", "std"]].to_string(index=False, float_format="%.3f"))

    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    ensemble = NoiseEnsembleClassifier(frozen, timesteps=TIMESTEPS, random_state=0)
    raw = make_pipeline(FunctionTransformer(pixels_of), tuned_probe())
    print(f"\n{folds}-fold accuracy on the same folds:")
    for name, model in (("noise-level ensemble", ensemble), ("raw pixels, tuned probe", raw)):
        scores = cross_val_score(model, paths, y, cv=cv)
        print(f"  {name:<24} {scores.mean():.3f} +- {scores.std():.3f}")

    table = label_noise_study({"ensemble": ensemble, "raw pixels": raw}, paths, y, rates=rates,
                              n_repeats=n_repeats, random_state=0)
    print("\nlabel-noise study (test accuracy on clean labels, one stratified split):")
    print(table[["estimator", "rate", "mean", "std"]].to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 images, a tiny denoiser, 20 training steps, 3 folds")
    parser.add_argument("--csv", type=Path, help="the competition's CSV of (id, label); default: digits built here")
    parser.add_argument("--images", type=Path, help="the folder of the CSV's images (default: beside the CSV)")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--label-column", default="label")
    args = parser.parse_args()
    settings = dict(max_steps=20, model_width=8, folds=3, rates=(0.0, 0.4), n_repeats=1) if args.quick else dict(
        max_steps=None, model_width=None, folds=5, rates=(0.0, 0.4), n_repeats=3)
    with tempfile.TemporaryDirectory() as scratch:
        if args.csv is None:
            csv, images = write_competition(Path(scratch), 300 if args.quick else 1797)
        else:
            csv, images = args.csv, args.images or args.csv.parent / args.csv.stem
        main(csv, images, args.id_column, args.label_column, **settings)
