"""NoiseEnsembleClassifier: one probe per noise level, aggregated.

The paper's practical payoff (section 1.4): train a linear probe on the
denoiser's features at the best timestep ``t*`` and at its neighbours on the
timestep grid, then average their logits. One trained denoiser serves every
timestep, so the ensemble costs a single denoiser training.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._validation import check_choice, check_int, check_timesteps, read_samples
from .featurizer import DiffusionFeaturizer

SELECTIONS = ("neighbors", "all")
AGGREGATIONS = ("logits", "proba", "vote")


def default_probe():
    """The linear probe used when none is given: standardize, then logistic regression.

    Returns
    -------
    probe : sklearn.pipeline.Pipeline
        ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``.
    """
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def check_featurizer(featurizer):
    """Raise ``TypeError`` unless ``featurizer`` offers ``extract(X, timesteps)``; return it.

    Parameters
    ----------
    featurizer : object
        A DiffusionFeaturizer, or one wrapped in ``FrozenEstimator``.

    Returns
    -------
    featurizer : object
    """
    if not hasattr(featurizer, "extract"):
        raise TypeError(
            "featurizer must be a DiffusionFeaturizer (or one wrapped in FrozenEstimator) "
            f"with an extract(X, timesteps) method, got {type(featurizer).__name__}."
        )
    return featurizer


def fit_featurizer(featurizer, X):
    """A fitted featurizer for ``X``: a frozen one as is, otherwise a fitted clone.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or sklearn.frozen.FrozenEstimator
        A featurizer wrapped in ``FrozenEstimator`` must already be fitted and
        is never refitted; anything else is cloned and fitted on ``X``.
    X : array-like
        Unlabelled training data.

    Returns
    -------
    fitted : DiffusionFeaturizer or FrozenEstimator
        Either way it exposes ``extract(X, timesteps)`` and ``schedule_``.
    """
    if isinstance(featurizer, FrozenEstimator):
        check_is_fitted(featurizer.estimator)
        return featurizer
    return clone(featurizer).fit(X)


def extract_blocks(featurizer, X, timesteps):
    """Features of ``X`` at several timesteps from one extraction, split per timestep.

    Parameters
    ----------
    featurizer : fitted DiffusionFeaturizer or FrozenEstimator
    X : array-like
    timesteps : sequence of int

    Returns
    -------
    blocks : list of ndarray, one ``(n_samples, width)`` array per timestep
    """
    return np.split(featurizer.extract(X, timesteps), len(timesteps), axis=1)


def schedule_length(featurizer):
    """Number of timesteps of a featurizer's schedule: the fitted one, else its parameter.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer or FrozenEstimator

    Returns
    -------
    num_train_timesteps : int
    """
    schedule = getattr(featurizer, "schedule_", None)
    if schedule is not None:
        return schedule.num_train_timesteps
    return featurizer.get_params()["num_train_timesteps"]


class NoiseEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Probes at several noise levels of one diffusion denoiser, aggregated.

    ``fit`` trains the denoiser once on ``X`` (labels unused), extracts features
    at every candidate timestep in one pass, scores a probe per timestep by
    stratified cross-validation on the training data, selects timesteps, and
    fits one probe per selected timestep. Predictions aggregate the probes.

    Timesteps are indices into the denoiser's DDPM training schedule: **larger
    is noisier** (``sigma_t = sqrt((1 - abar_t) / abar_t)``).

    Parameters
    ----------
    featurizer : DiffusionFeaturizer, FrozenEstimator or None, default=None
        Source of the features. An unfitted featurizer is cloned and fitted on
        ``X``; one wrapped in ``sklearn.frozen.FrozenEstimator`` is used as is
        (no training), so several classifiers can share one trained denoiser.
        None means ``DiffusionFeaturizer(random_state=random_state)``; an
        unfitted featurizer whose ``random_state`` is None is seeded with
        ``random_state`` too. The featurizer's own ``timesteps`` parameter is
        not used.
    timesteps : sequence of int, default=(0, 10, 25, 50, 100, 200, 400)
        Candidate timesteps, scored and selected from; sorted ascending to form
        the grid on which neighbours are taken.
    selection : {"neighbors", "all"} or sequence of int, default="neighbors"
        ``"neighbors"``: the best-scoring candidate ``t*`` plus ``n_neighbors``
        grid neighbours on each side (fewer at the ends of the grid).
        ``"all"``: every candidate. A sequence: exactly these timesteps, which
        must be among ``timesteps``.
    n_neighbors : int, default=2
        Grid neighbours of ``t*`` on each side (``selection="neighbors"`` only);
        0 gives the single best timestep.
    estimator : classifier or None, default=None
        The probe, cloned for every timestep. None means
        ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))``.
    aggregation : {"logits", "proba", "vote"}, default="logits"
        ``"logits"``: average the probes' ``decision_function`` (the paper's
        choice); probabilities are the softmax of the average (the logistic
        sigmoid for two classes). ``"proba"``: average ``predict_proba``.
        ``"vote"``: majority vote, ties going to the class listed first in
        ``classes_``; probabilities are the vote fractions.
    cv : int, default=3
        Folds of the stratified, shuffled cross-validation that scores each
        candidate. Lowered to the size of the smallest class when that is
        smaller; if a class has a single sample, candidates are scored on the
        training data itself.
    random_state : int, RandomState instance or None, default=None
        Shuffles the cross-validation folds (the same folds for every
        timestep) and seeds an unfitted featurizer that has no seed of its own.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of input features (pixels for images).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``; only defined for such input.
    featurizer_ : DiffusionFeaturizer or FrozenEstimator
        The fitted featurizer (the given frozen one when frozen).
    timestep_scores_ : dict of int -> dict
        For every candidate timestep, the probe's cross-validated accuracy
        ``{"mean": float, "std": float}`` on the training data.
    selected_timesteps_ : tuple of int
        The timesteps whose probes are aggregated, ascending.
    estimators_ : list of estimators
        The fitted probe of each selected timestep, in the same order. They are
        fitted on encoded labels ``0 .. n_classes - 1``.

    See Also
    --------
    diffrep.DiffusionFeaturizer : The features of one denoiser at chosen timesteps.
    diffrep.curves.representation_curve : Probe accuracy as a function of the timestep.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), max_steps=5, random_state=0)
    >>> clf = NoiseEnsembleClassifier(featurizer, timesteps=(10, 50, 100), n_neighbors=1,
    ...                               random_state=0).fit(X[:200], y[:200])
    >>> len(clf.selected_timesteps_) in (2, 3)
    True
    """

    def __init__(
        self,
        featurizer=None,
        timesteps=(0, 10, 25, 50, 100, 200, 400),
        selection="neighbors",
        n_neighbors=2,
        estimator=None,
        aggregation="logits",
        cv=3,
        random_state=None,
    ):
        self.featurizer = featurizer
        self.timesteps = timesteps
        self.selection = selection
        self.n_neighbors = n_neighbors
        self.estimator = estimator
        self.aggregation = aggregation
        self.cv = cv
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _featurizer_template(self):
        """The featurizer to fit (a copy; a frozen one as is), seeded by ``random_state`` if it has no seed."""
        if isinstance(self.featurizer, FrozenEstimator):
            check_is_fitted(self.featurizer.estimator)  # before its schedule is asked for
            return self.featurizer
        featurizer = DiffusionFeaturizer() if self.featurizer is None else clone(check_featurizer(self.featurizer))
        if featurizer.get_params().get("random_state", 0) is None:
            featurizer.set_params(random_state=self.random_state)
        return featurizer

    def _probe(self):
        return default_probe() if self.estimator is None else self.estimator

    def _check_params(self, featurizer):
        """Validate every parameter; return the sorted candidates and an explicit selection (or None)."""
        candidates = tuple(sorted(check_timesteps(self.timesteps, schedule_length(featurizer))))
        chosen = None
        if isinstance(self.selection, str):
            check_choice("selection", self.selection, SELECTIONS)
        else:
            chosen = tuple(sorted(check_timesteps(self.selection, schedule_length(featurizer), name="selection")))
            missing = sorted(set(chosen) - set(candidates))
            if missing:
                raise ValueError(f"selection timesteps {missing} are not among timesteps={list(candidates)}.")
        check_int("n_neighbors", self.n_neighbors, minimum=0)
        check_int("cv", self.cv, minimum=2)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)
        probe = self._probe()
        needed = {"logits": "decision_function", "proba": "predict_proba", "vote": "predict"}[self.aggregation]
        if not hasattr(probe, "fit") or not hasattr(probe, needed):
            raise TypeError(
                f"estimator must be a classifier with fit and {needed} (needed by "
                f"aggregation={self.aggregation!r}), got {type(probe).__name__}."
            )
        return candidates, chosen

    # --------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train the denoiser (unless frozen), select timesteps and fit their probes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (strings or integers).

        Returns
        -------
        self : NoiseEnsembleClassifier
            The fitted classifier.
        """
        featurizer = self._featurizer_template()
        candidates, chosen = self._check_params(featurizer)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        read_samples(self, X, None, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y has only one class.")
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)

        self.featurizer_ = fit_featurizer(featurizer, X)
        blocks = extract_blocks(self.featurizer_, X, candidates)
        scores = self._cross_validate(blocks, codes)
        self.timestep_scores_ = {
            t: {"mean": float(np.mean(s)), "std": float(np.std(s))} for t, s in zip(candidates, scores)
        }
        if chosen is not None:
            self.selected_timesteps_ = chosen
        elif self.selection == "all":
            self.selected_timesteps_ = candidates
        else:
            best = int(np.argmax([np.mean(s) for s in scores]))
            self.selected_timesteps_ = candidates[max(0, best - self.n_neighbors) : best + self.n_neighbors + 1]
        block_of = dict(zip(candidates, blocks))
        self.estimators_ = [clone(self._probe()).fit(block_of[t], codes) for t in self.selected_timesteps_]
        return self

    def _cross_validate(self, blocks, codes):
        """Accuracy of a probe on each timestep's features, over the same folds."""
        n_splits = min(self.cv, int(np.bincount(codes).min()))
        if n_splits < 2:
            # A class with a single sample cannot be split: score on the training data.
            return [[clone(self._probe()).fit(block, codes).score(block, codes)] for block in blocks]
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        folds = list(splitter.split(blocks[0], codes))
        return [
            cross_val_score(clone(self._probe()), block, codes, cv=folds, error_score="raise")
            for block in blocks
        ]

    # ------------------------------------------------------------ prediction
    def _class_scores(self, X):
        """Aggregated per-class scores, shape (n_samples, n_classes); argmax is the prediction."""
        check_is_fitted(self)
        read_samples(self, X, None, reset=False)
        blocks = extract_blocks(self.featurizer_, X, self.selected_timesteps_)
        n_classes = len(self.classes_)
        total = np.zeros((blocks[0].shape[0], n_classes))
        for probe, block in zip(self.estimators_, blocks):
            if self.aggregation == "vote":
                total[np.arange(len(block)), probe.predict(block)] += 1.0
            elif self.aggregation == "proba":
                total += probe.predict_proba(block)
            else:
                logits = probe.decision_function(block)
                if logits.ndim == 1:  # binary: the logit of classes_[1] against classes_[0]
                    logits = np.column_stack([np.zeros_like(logits), logits])
                total += logits
        return total / len(self.estimators_)

    def decision_function(self, X):
        """Aggregated class scores: mean logits, mean probabilities or vote fractions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the score of ``classes_[1]`` minus that of
            ``classes_[0]`` (positive means ``classes_[1]``).
        """
        scores = self._class_scores(X)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X):
        """Class probabilities of the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Softmax of the mean logits, mean probabilities or vote fractions,
            depending on ``aggregation``; columns follow ``classes_``.
        """
        scores = self._class_scores(X)
        return softmax(scores, axis=1) if self.aggregation == "logits" else scores

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n, H, W) or (n, C, H, W)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self._class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]
