"""Data scaling learned in ``fit`` and re-applied in ``transform``."""

from __future__ import annotations

import numpy as np

SCALINGS = ("auto", "minmax", "standard", "none")


class DataScaler:
    """Affine map of the raw input into the range the denoiser is trained on.

    Parameters
    ----------
    kind : {"minmax", "standard", "none"}
        ``"minmax"`` maps the training range (one global minimum and maximum,
        as suits images) to ``[-1, 1]``; ``"standard"`` standardizes every column
        (as suits tables); ``"none"`` leaves the data as they are.

    Attributes
    ----------
    offset_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        The map is ``(X - offset_) / scale_``.
    """

    def __init__(self, kind):
        if kind not in SCALINGS[1:]:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {kind!r}.")
        self.kind = kind

    def fit(self, X):
        """Learn the map from the 2-D training data ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        self : DataScaler
        """
        n_features = X.shape[1]
        if self.kind == "minmax":
            low, high = float(X.min()), float(X.max())
            half_range = (high - low) / 2.0 or 1.0
            self.offset_ = np.full(n_features, low + half_range)
            self.scale_ = np.full(n_features, half_range)
        elif self.kind == "standard":
            self.offset_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        else:
            self.offset_ = np.zeros(n_features)
            self.scale_ = np.ones(n_features)
        return self

    def transform(self, X):
        """Apply the map; returns a new float32 array (``X`` is not modified).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        X_scaled : ndarray of float32
        """
        return ((X - self.offset_) / self.scale_).astype(np.float32)
