"""A Kaggle-style tabular workflow: categorical columns, tuned baselines, one run.

Classification: a pandas DataFrame with numeric and categorical columns (the
breast-cancer measurements plus two categorical columns derived from them, so
no download is needed) goes through a ``ColumnTransformer`` (one-hot for the
categories, scaling for the numbers) and then either a tuned raw baseline
(``LogisticRegressionCV``) or ``DiffusionFeaturizer`` with the MLP denoiser
followed by the same probe. Every model sees the same encoded columns and the
same stratified folds.

Regression: scikit-learn's diabetes data, ``RidgeCV`` on the raw columns
against ``RidgeCV`` on diffusion features and ``NoiseEnsembleRegressor``, by
5-fold cross-validated R^2.

Measured (1,000 steps, 5 folds): accuracy 0.975 raw, 0.979 features at t=10,
0.972 at t=10, 50, 200; diabetes R^2 0.488 raw, 0.428 features, 0.484 ensemble
(fold spreads 0.007-0.12): no gain over the tuned raw baselines on these tables.

Run::

    python examples/tabular_kaggle.py            # a few minutes on 2 CPU cores
    python examples/tabular_kaggle.py --quick    # seconds
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from diffrep import DiffusionFeaturizer, NoiseEnsembleRegressor


def load_frame():
    """Breast-cancer measurements as a DataFrame with two categorical columns added."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["size_band"] = pd.cut(frame["mean radius"], [0, 12, 15, 40], labels=["small", "medium", "large"])
    frame["texture_band"] = np.where(frame["mean texture"] > frame["mean texture"].median(), "rough", "smooth")
    return frame, data.target.to_numpy()


def encoder(frame):
    """One-hot for the categorical columns, standardization for the numeric ones."""
    categorical = ["size_band", "texture_band"]
    numeric = [column for column in frame.columns if column not in categorical]
    return make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), categorical), (StandardScaler(), numeric)
    )


def classification(max_steps, folds):
    frame, y = load_frame()
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    probe = LogisticRegressionCV(Cs=5 if folds < 5 else 10, max_iter=2000)
    models = {"raw columns + LogisticRegressionCV": make_pipeline(encoder(frame), probe)}
    for timesteps in ((10,), (10, 50, 200)):
        featurizer = DiffusionFeaturizer(timesteps=timesteps, max_steps=max_steps, random_state=0)
        name = f"diffusion t={list(timesteps)} + LogisticRegressionCV"
        models[name] = make_pipeline(encoder(frame), featurizer, probe)
    return {name: cross_val_score(model, frame, y, cv=cv) for name, model in models.items()}


def regression(max_steps, folds):
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(folds, shuffle=True, random_state=0)
    featurizer = DiffusionFeaturizer(timesteps=(10, 50), max_steps=max_steps, random_state=0)
    models = {
        "raw columns + RidgeCV": make_pipeline(StandardScaler(), RidgeCV()),
        "diffusion t=[10, 50] + RidgeCV": make_pipeline(featurizer, StandardScaler(), RidgeCV()),
        "NoiseEnsembleRegressor": NoiseEnsembleRegressor(
            DiffusionFeaturizer(max_steps=max_steps, random_state=0),
            timesteps=(0, 10, 25, 50, 100, 200),
            random_state=0,
        ),
    }
    return {name: cross_val_score(model, X, y, cv=cv, scoring="r2") for name, model in models.items()}


def report(title, scores):
    print(f"\n{title}")
    width = max(len(name) for name in scores)
    for name, values in scores.items():
        print(f"  {name:<{width}}  {values.mean():.3f} +- {values.std():.3f}")


def main(argv=None):
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn.linear_model")  # 1.9 deprecations
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short training, seconds")
    args = parser.parse_args(argv)
    max_steps, folds = (10, 2) if args.quick else (1000, 5)
    start = time.perf_counter()
    accuracy = classification(max_steps, folds)
    report(f"breast cancer + categorical columns, {folds}-fold accuracy", accuracy)
    r2 = regression(max_steps, folds)
    report(f"diabetes, {folds}-fold R^2", r2)
    print(f"\n({time.perf_counter() - start:.0f} s, max_steps={max_steps})")
    return accuracy, r2


if __name__ == "__main__":
    main()
