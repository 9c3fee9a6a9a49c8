"""Named feature columns with ``set_output(transform="pandas")``.

``get_feature_names_out()`` names every column ``t{timestep}__{layer}__{channel}``,
followed by ``__r{row}c{column}`` for the cell of the pooling grid (``feature_info_``
gives each layer's cells), so a featurizer (alone or in a Pipeline) can return a labelled DataFrame, which
makes it easy to select the features of one noise level or one layer.

Run::

    python examples/pandas_output.py            # seconds
    python examples/pandas_output.py --quick
"""

import argparse

from sklearn.datasets import load_digits

from diffrep import DiffusionFeaturizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 digits and a shorter training")
    args = parser.parse_args(argv)
    X, _ = load_digits(return_X_y=True)
    if args.quick:
        X = X[:300]
    feat = DiffusionFeaturizer(timesteps=(10, 100), layers=("mid_block", "x0"), image_shape=(1, 8, 8),
                               max_steps=10 if args.quick else 200, model_width=16, random_state=0)
    frame = feat.set_output(transform="pandas").fit_transform(X)
    print(frame.iloc[:3, :4])
    print(f"{frame.shape[1]} columns; those of t=100 in mid_block: "
          f"{frame.filter(like='t100__mid_block').shape[1]}")
    return frame


if __name__ == "__main__":
    main()
