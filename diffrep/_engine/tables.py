"""Tidy result tables of the studies (pandas, imported on first use)."""

from __future__ import annotations

import numpy as np


def import_pandas():
    """Import pandas, or explain how to install it.

    Returns
    -------
    pandas : module

    Raises
    ------
    ImportError
        If pandas is not installed.
    """
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "diffrep's result tables are pandas DataFrames: install pandas (pip install pandas)."
        ) from None
    return pandas


def score_table(rows, scores):
    """A tidy table of repeated scores: the given columns, ``mean``, ``std``, ``score_i``.

    Parameters
    ----------
    rows : list of dict
        Identifying columns of each row (e.g. ``{"timestep": 50, "sigma": 0.2}``).
    scores : list of sequence of float
        The scores of each row; every row has the same number.

    Returns
    -------
    table : pandas.DataFrame
    """
    pandas = import_pandas()
    scores = np.asarray(scores, dtype=float)
    table = pandas.DataFrame(rows)
    table["mean"] = scores.mean(axis=1)
    table["std"] = scores.std(axis=1)
    for i in range(scores.shape[1]):
        table[f"score_{i}"] = scores[:, i]
    return table
